//! HTTP load generator for the receiver: `--concurrency` connections each posting
//! freshly signed `user.updated` events with unique ids for `--seconds`. Prints
//! requests/s, p50/p99 latency and the status codes seen.
//!
//! `--client raw` (default) speaks HTTP/1.1 keep-alive directly over one TCP stream per
//! connection, on one thread: on a 2-core machine the load generator shares the cores
//! with the server and RabbitMQ, and reqwest's client cost about as much CPU per request
//! as the receiver itself. `--client reqwest` keeps the general-purpose client for
//! comparison. An `https://` URL runs the raw client over TLS (rustls, one handshake per
//! connection, then keep-alive), trusting the PEM certificate given with `--ca`.

#![allow(clippy::print_stdout)] // a benchmark reports its figures on stdout

use std::{
    collections::BTreeMap,
    time::{Duration, Instant},
};

use clap::{Parser, ValueEnum};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use workos_sync_bench::{CpuSample, ProcCpu, cpu_note, ms, signed_update, summarize};

#[derive(Parser)]
struct Args {
    /// Full URL of the webhook endpoint.
    #[arg(long, default_value = "http://127.0.0.1:8080/api/webhooks/workos")]
    url: String,
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    #[arg(
        long,
        env = "WORKOS_WEBHOOK_SECRET",
        default_value = "whsec_testkit_secret"
    )]
    secret: String,
    /// Label printed with the figures.
    #[arg(long, default_value = "receiver")]
    label: String,
    #[arg(long, value_enum, default_value_t = ClientKind::Raw)]
    client: ClientKind,
    /// PEM certificate the server's must chain to, for an https URL.
    #[arg(long)]
    ca: Option<std::path::PathBuf>,
}

/// A connection's byte stream: plain TCP or TLS over it.
trait Io: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send> Io for T {}

/// How the raw client opens a connection.
#[derive(Clone)]
enum Dial {
    Plain,
    Tls(
        tokio_rustls::TlsConnector,
        rustls::pki_types::ServerName<'static>,
    ),
}

impl Dial {
    fn for_url(url: &reqwest::Url, ca: Option<&std::path::Path>) -> anyhow::Result<Self> {
        use rustls::pki_types::{CertificateDer, pem::PemObject};
        if url.scheme() != "https" {
            return Ok(Self::Plain);
        }
        let ca = ca.ok_or_else(|| anyhow::anyhow!("an https URL needs --ca <PEM>"))?;
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_file_iter(ca)? {
            roots.add(cert?)?;
        }
        let config = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
            rustls::crypto::aws_lc_rs::default_provider(),
        ))
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
        let host = url.host_str().unwrap_or("127.0.0.1").to_owned();
        let name = rustls::pki_types::ServerName::try_from(host)?;
        Ok(Self::Tls(
            tokio_rustls::TlsConnector::from(std::sync::Arc::new(config)),
            name,
        ))
    }

    async fn open(&self, addr: &str) -> Option<Box<dyn Io>> {
        let s = tokio::net::TcpStream::connect(addr).await.ok()?;
        s.set_nodelay(true).ok()?;
        match self {
            Self::Plain => Some(Box::new(s)),
            Self::Tls(connector, name) => {
                Some(Box::new(connector.connect(name.clone(), s).await.ok()?))
            }
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum ClientKind {
    /// Minimal HTTP/1.1 keep-alive client, one thread.
    Raw,
    /// reqwest on the multi-thread runtime, as an application would use it.
    Reqwest,
}

/// One result per request: latency and status code (0 = transport error).
type Results = (Vec<Duration>, BTreeMap<u16, u64>);

/// How one connection sends a signed request; answers the status code, `None` on a
/// transport error.
enum Sender {
    Raw(RawConnection),
    Reqwest {
        client: reqwest::Client,
        url: String,
    },
}

impl Sender {
    async fn post(&mut self, body: String, sig: String) -> Option<u16> {
        match self {
            Self::Raw(c) => c.post(&body, &sig).await,
            Self::Reqwest { client, url } => client
                .post(url.as_str())
                .header("WorkOS-Signature", sig)
                .body(body)
                .send()
                .await
                .ok()
                .map(|r| r.status().as_u16()),
        }
    }
}

/// A minimal HTTP/1.1 client on one keep-alive connection: writes a request, reads the
/// status line and headers, then `Content-Length` bytes of body. Reconnects after the
/// server closed the connection or an error.
struct RawConnection {
    addr: String,
    path: String,
    dial: Dial,
    stream: Option<Box<dyn Io>>,
    buf: Vec<u8>,
    req: Vec<u8>,
}

impl RawConnection {
    fn new(addr: String, path: String, dial: Dial) -> Self {
        Self {
            addr,
            path,
            dial,
            stream: None,
            buf: Vec::with_capacity(4096),
            req: Vec::with_capacity(4096),
        }
    }

    async fn post(&mut self, body: &str, sig: &str) -> Option<u16> {
        let answer = self.exchange(body, sig).await;
        if !matches!(answer, Some((_, true))) {
            self.stream = None;
        }
        answer.map(|(code, _)| code)
    }

    /// Sends one request and reads its response: (status, keep the connection).
    async fn exchange(&mut self, body: &str, sig: &str) -> Option<(u16, bool)> {
        let (addr, path) = (&self.addr, &self.path);
        self.req.clear();
        self.req.extend_from_slice(
            format!(
                "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
                 WorkOS-Signature: {sig}\r\nContent-Length: {}\r\n\r\n",
                body.len()
            )
            .as_bytes(),
        );
        self.req.extend_from_slice(body.as_bytes());
        if self.stream.is_none() {
            self.stream = Some(self.dial.open(addr).await?);
        }
        let s = self.stream.as_mut()?;
        s.write_all(&self.req).await.ok()?;
        self.buf.clear();
        // The response head, parsed by httparse as soon as it is complete.
        let (header_end, code, len, keep) = loop {
            let mut headers = [httparse::EMPTY_HEADER; 32];
            let mut resp = httparse::Response::new(&mut headers);
            if let httparse::Status::Complete(end) = resp.parse(&self.buf).ok()? {
                let header = |name: &str| {
                    resp.headers
                        .iter()
                        .find(|h| h.name.eq_ignore_ascii_case(name))
                        .and_then(|h| std::str::from_utf8(h.value).ok())
                };
                let len: usize = header("content-length")
                    .and_then(|v| v.trim().parse().ok())
                    .unwrap_or(0);
                let keep = !header("connection").is_some_and(|v| v.eq_ignore_ascii_case("close"));
                break (end, resp.code?, len, keep);
            }
            read_more(s, &mut self.buf).await?;
        };
        while self.buf.len() < header_end + len {
            read_more(s, &mut self.buf).await?;
        }
        Some((code, keep))
    }
}

/// Appends what the socket has to `buf`; `None` at end of stream or on an error.
async fn read_more(s: &mut Box<dyn Io>, buf: &mut Vec<u8>) -> Option<()> {
    let mut chunk = [0u8; 4096];
    let n = s.read(&mut chunk).await.ok()?;
    buf.extend_from_slice(chunk.get(..n).filter(|c| !c.is_empty())?);
    Some(())
}

/// One connection's requests until `deadline`: each a fresh event, freshly signed.
async fn connection(
    mut sender: Sender,
    secret: String,
    run_id: String,
    worker: usize,
    deadline: Instant,
) -> Results {
    let mut lat = Vec::new();
    let mut codes: BTreeMap<u16, u64> = BTreeMap::new();
    let mut i = 0u64;
    while Instant::now() < deadline {
        i += 1;
        let (body, sig) = signed_update(
            &format!("event_{run_id}_{worker}_{i}"),
            &format!("user_{}", i % 1000),
            &secret,
        );
        let t = Instant::now();
        let code = sender.post(body, sig).await.unwrap_or(0);
        lat.push(t.elapsed());
        *codes.entry(code).or_default() += 1;
    }
    (lat, codes)
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    // The raw client runs on one thread (its work is syscalls); reqwest on the default
    // multi-thread runtime, as an application would use it.
    let rt = match args.client {
        ClientKind::Raw => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?,
        ClientKind::Reqwest => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?,
    };
    rt.block_on(run(args))
}

async fn run(args: Args) -> anyhow::Result<()> {
    let url = reqwest::Url::parse(&args.url)?;
    let addr = format!(
        "{}:{}",
        url.host_str().unwrap_or("127.0.0.1"),
        url.port_or_known_default().unwrap_or(80)
    );
    let dial = Dial::for_url(&url, args.ca.as_deref())?;
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(args.concurrency)
        .timeout(Duration::from_secs(30))
        .build()?;
    let deadline = Instant::now() + Duration::from_secs(args.seconds);
    let run_id = uuid::Uuid::new_v4().simple().to_string();
    let started = Instant::now();
    let cpu = (CpuSample::now(), ProcCpu::now());
    let tasks = (0..args.concurrency)
        .map(|worker| {
            let sender = match args.client {
                ClientKind::Raw => Sender::Raw(RawConnection::new(
                    addr.clone(),
                    url.path().to_owned(),
                    dial.clone(),
                )),
                ClientKind::Reqwest => Sender::Reqwest {
                    client: client.clone(),
                    url: args.url.clone(),
                },
            };
            tokio::spawn(connection(
                sender,
                args.secret.clone(),
                run_id.clone(),
                worker,
                deadline,
            ))
        })
        .collect();
    report(&args, started, cpu, tasks).await
}

async fn report(
    args: &Args,
    started: Instant,
    (cpu, procs): (Option<CpuSample>, ProcCpu),
    tasks: Vec<tokio::task::JoinHandle<Results>>,
) -> anyhow::Result<()> {
    let mut lat = Vec::new();
    let mut codes: BTreeMap<u16, u64> = BTreeMap::new();
    for t in tasks {
        let (l, c) = t.await?;
        lat.extend(l);
        for (k, v) in c {
            *codes.entry(k).or_default() += v;
        }
    }
    let elapsed = started.elapsed();
    let s = summarize(lat);
    println!(
        "{} client={} concurrency={} requests={} rate={:.0}/s p50={:.2}ms p99={:.2}ms max={:.1}ms codes={:?}",
        args.label,
        match args.client {
            ClientKind::Raw => "raw",
            ClientKind::Reqwest => "reqwest",
        },
        args.concurrency,
        s.count,
        s.count as f64 / elapsed.as_secs_f64(),
        ms(s.p50),
        ms(s.p99),
        ms(s.max),
        codes
    );
    println!(
        "   CPU{}; µs per request by process: {}",
        cpu_note(cpu.and_then(|c| c.since(s.count))),
        ProcCpu::now().per_item_since(&procs, s.count, 5)
    );
    Ok(())
}
