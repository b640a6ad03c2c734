//! Helpers shared by the server's integration tests.

use std::net::SocketAddr;
use std::path::PathBuf;

use provmark_llm::serving::{Serving, ServingConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A control engine on the tiny llama GGUF of llm/tests (no download).
#[allow(dead_code)] // not every test file starts one
pub fn tiny_engine(batch: usize) -> Serving {
    let config = ServingConfig {
        model: Some(
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("../llm/tests/data/tiny/tiny-llama.gguf"),
        ),
        watermark: None,
        force_tokenizer: false,
        threads: Some(1),
        batch,
        precision: Default::default(),
    };
    Serving::start(&config, &mut |_| {}).unwrap()
}

/// One HTTP/1.1 exchange on a new connection (`connection: close`): the
/// status, the head lower-cased and the body.
#[allow(dead_code)]
pub async fn exchange(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: &str,
) -> (u16, String, String) {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let req = format!(
        "{method} {path} HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).await.unwrap();
    let text = String::from_utf8(out).expect("the server writes UTF-8");
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    (
        head[9..12].parse().unwrap(),
        head.to_lowercase(),
        body.to_string(),
    )
}
