//! The two halves of a scripted OpenAI-compatible test server (loopback
//! only): reading one request's chat prompt and bearer token, and writing a
//! JSON response with extra headers.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;

use serde_json::Value;

/// One chat request as a scripted server sees it.
pub struct ChatRequest {
    /// The `Authorization` header's value (empty when none was sent).
    pub authorization: String,
    /// The body, parsed.
    pub body: Value,
    /// The first message's content.
    pub prompt: String,
}

/// Reads one request from `stream`; `None` when the client closed first.
/// Panics on a body that is not a chat request (the tests send only those).
pub fn read_chat_request(stream: &TcpStream) -> Option<ChatRequest> {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let (mut length, mut authorization) = (0, String::new());
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return None;
        }
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        let lower = l.to_ascii_lowercase();
        if let Some(v) = lower.strip_prefix("content-length:") {
            length = v.trim().parse().unwrap();
        }
        if lower.starts_with("authorization:") {
            authorization = l["authorization:".len()..].trim().to_string();
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).unwrap();
    let body: Value = serde_json::from_slice(&body).unwrap();
    let prompt = body["messages"][0]["content"].as_str().unwrap().to_string();
    Some(ChatRequest {
        authorization,
        body,
        prompt,
    })
}

/// Writes a response with `status` (e.g. `200 OK`), extra `headers` (each
/// ending in `\r\n`; may be empty) and a JSON `body`, then closes.
pub fn respond(stream: &mut TcpStream, status: &str, headers: &str, body: &str) {
    let _ = write!(
        stream,
        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n{headers}\r\n{body}",
        body.len()
    );
}
