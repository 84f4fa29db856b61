//! A small TCP proxy for fault injection: tests point a service at the proxy instead of
//! the real broker or database, then cut and restore the path without stopping the
//! shared server.
//!
//! - [`TcpProxy::cut`]: every open connection is dropped (the client sees a reset/EOF)
//!   and new connections are accepted and closed at once.
//! - [`TcpProxy::blackhole`]: connections stay open but no bytes flow either way, as with
//!   a network partition (only timeouts and heartbeats notice); a side that closes its
//!   connection meanwhile is not seen closing by the other.
//! - [`TcpProxy::restore`]: traffic flows again for new connections.

use std::{
    net::SocketAddr,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU8, Ordering},
    },
};

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
    sync::watch,
};

const OPEN: u8 = 0;
const CUT: u8 = 1;
const BLACKHOLE: u8 = 2;

pub struct TcpProxy {
    addr: SocketAddr,
    mode: Arc<AtomicU8>,
    /// Bumped on every cut: connection tasks of an older epoch drop their sockets.
    epoch: watch::Sender<u64>,
    task: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl TcpProxy {
    /// Starts a proxy on 127.0.0.1 (random port) forwarding to `target`.
    pub async fn start(target: SocketAddr) -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let mode = Arc::new(AtomicU8::new(OPEN));
        let (epoch, _) = watch::channel(0u64);
        let task = {
            let mode = mode.clone();
            let epoch = epoch.clone();
            tokio::spawn(async move {
                loop {
                    let Ok((client, _)) = listener.accept().await else {
                        continue;
                    };
                    if mode.load(Ordering::SeqCst) == CUT {
                        drop(client);
                        continue;
                    }
                    let mode = mode.clone();
                    let epoch_rx = epoch.subscribe();
                    tokio::spawn(pipe(client, target, mode, epoch_rx));
                }
            })
        };
        Ok(Self {
            addr,
            mode,
            epoch,
            task: Mutex::new(Some(task)),
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Drops every connection and refuses new ones until [`TcpProxy::restore`].
    pub fn cut(&self) {
        self.mode.store(CUT, Ordering::SeqCst);
        self.epoch.send_modify(|e| *e += 1);
    }

    /// Keeps connections open but stops all traffic.
    pub fn blackhole(&self) {
        self.mode.store(BLACKHOLE, Ordering::SeqCst);
    }

    /// Lets traffic flow again. Connections cut earlier stay closed; clients reconnect.
    pub fn restore(&self) {
        // Connections that were blackholed may hold half-written frames: drop them too.
        if self.mode.swap(OPEN, Ordering::SeqCst) == BLACKHOLE {
            self.epoch.send_modify(|e| *e += 1);
        }
    }
}

impl Drop for TcpProxy {
    fn drop(&mut self) {
        self.epoch.send_modify(|e| *e += 1);
        if let Ok(mut t) = self.task.lock()
            && let Some(t) = t.take()
        {
            t.abort();
        }
    }
}

async fn pipe(
    client: TcpStream,
    target: SocketAddr,
    mode: Arc<AtomicU8>,
    mut epoch: watch::Receiver<u64>,
) {
    let Ok(server) = TcpStream::connect(target).await else {
        return;
    };
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let (mut cr, mut cw) = client.into_split();
    let (mut sr, mut sw) = server.into_split();
    let start_epoch = *epoch.borrow_and_update();
    let up = copy(&mut cr, &mut sw, mode.clone());
    let down = copy(&mut sr, &mut cw, mode);
    tokio::select! {
        _ = up => {}
        _ = down => {}
        _ = async {
            loop {
                if epoch.changed().await.is_err() { return; }
                if *epoch.borrow() != start_epoch { return; }
            }
        } => {}
    }
}

async fn copy<R, W>(r: &mut R, w: &mut W, mode: Arc<AtomicU8>) -> std::io::Result<()>
where
    R: AsyncReadExt + Unpin,
    W: AsyncWriteExt + Unpin,
{
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = r.read(&mut buf).await?;
        if n == 0 {
            // A close does not cross a partition either: the other side keeps its
            // connection (and, for Postgres, the session) until it notices by itself, or
            // until the proxy is restored or cut.
            if mode.load(Ordering::SeqCst) == BLACKHOLE {
                std::future::pending::<()>().await;
            }
            return Ok(());
        }
        // While blackholed, bytes are swallowed: the peer sees silence, not a close.
        if mode.load(Ordering::SeqCst) == BLACKHOLE {
            continue;
        }
        w.write_all(&buf[..n]).await?;
    }
}
