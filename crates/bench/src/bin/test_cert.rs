//! `test-cert <dir>`: writes a self-signed certificate for `127.0.0.1` and `localhost`
//! (`cert.pem`) and its key (`key.pem`) into `dir`, for the TLS ingress benchmark
//! (rcgen, as the TLS tests use; an end-entity certificate, not a CA, which rustls would
//! refuse as a server's).

#![allow(clippy::print_stdout)] // prints the paths it wrote

fn main() -> anyhow::Result<()> {
    let dir = std::path::PathBuf::from(
        std::env::args()
            .nth(1)
            .ok_or_else(|| anyhow::anyhow!("usage: test-cert <dir>"))?,
    );
    let c = rcgen::generate_simple_self_signed(vec!["127.0.0.1".into(), "localhost".into()])?;
    std::fs::create_dir_all(&dir)?;
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert, c.cert.pem())?;
    std::fs::write(&key, c.signing_key.serialize_pem())?;
    println!("{} {}", cert.display(), key.display());
    Ok(())
}
