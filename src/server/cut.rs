//! Connections the server can cut at the end of a stop's grace. tonic runs each connection on a task of its own,
//! which aborting the server's task does not reach: a reply its client stopped reading (a stalled download) would
//! keep its connection, and with it the app and the store, open for as long as the client likes, so the stop
//! could neither release the data directory nor write sled's snapshot. Every accepted socket is wrapped in
//! [`CutIo`], whose reads and writes fail once [`CutSwitch::cut`] is called, waking the connection's task to end.
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::watch;
use tonic::transport::server::Connected;

/// Cuts every connection it has wrapped.
pub struct CutSwitch {
    /// Read by every read and write: a plain load. `cut` is polled only by a connection about to park on its socket
    /// (it takes a lock in the watch's notifier).
    flag: Arc<AtomicBool>,
    /// Wakes the connections parked on their sockets.
    cut: watch::Sender<bool>,
}

impl CutSwitch {
    pub fn new() -> CutSwitch {
        CutSwitch { flag: Arc::new(AtomicBool::new(false)), cut: watch::Sender::new(false) }
    }

    /// What wraps connections for this switch (it goes with the listener's stream).
    pub fn wrapper(&self) -> Wrapper {
        Wrapper { flag: self.flag.clone(), cut: self.cut.subscribe() }
    }

    /// Makes every wrapped connection's reads and writes fail from now on.
    pub fn cut(&self) {
        // The flag first: a connection that finds it unset and then parks is woken by the send.
        self.flag.store(true, Ordering::SeqCst);
        self.cut.send_replace(true);
    }
}

impl Default for CutSwitch {
    fn default() -> Self {
        CutSwitch::new()
    }
}

/// Wraps connections to be cut by one [`CutSwitch`].
#[derive(Clone)]
pub struct Wrapper {
    flag: Arc<AtomicBool>,
    cut: watch::Receiver<bool>,
}

impl Wrapper {
    /// `io`, to be cut with the others.
    pub fn wrap<T>(&self, io: T) -> CutIo<T> {
        let mut rx = self.cut.clone();
        let cut = Box::pin(async move {
            // A switch dropped without cutting cuts nothing.
            if rx.wait_for(|cut| *cut).await.is_err() {
                std::future::pending::<()>().await;
            }
        });
        CutIo { inner: io, flag: self.flag.clone(), cut: Some(cut) }
    }
}

/// A socket whose reads and writes fail once its switch is cut.
pub struct CutIo<T> {
    inner: T,
    flag: Arc<AtomicBool>,
    /// Resolves when the switch is cut; `None` once it has (a finished future must not be polled again).
    cut: Option<Pin<Box<dyn Future<Output = ()> + Send>>>,
}

fn aborted() -> io::Error {
    io::Error::new(io::ErrorKind::ConnectionAborted, "the server stopped")
}

impl<T> CutIo<T> {
    /// An error once the switch is cut.
    fn check(&self) -> io::Result<()> {
        if self.flag.load(Ordering::Relaxed) { Err(aborted()) } else { Ok(()) }
    }

    /// `polled`, the socket's answer, unless the switch was cut. When the socket has nothing for now, the task is
    /// about to park on it: it is registered to be woken by the cut too. Registering only then keeps the cost off
    /// reads and writes that go through.
    fn or_cut<R>(&mut self, cx: &mut Context<'_>, polled: Poll<io::Result<R>>) -> Poll<io::Result<R>> {
        if polled.is_ready() {
            return polled;
        }
        let cut = match self.cut.as_mut() {
            Some(waiting) => waiting.as_mut().poll(cx).is_ready(),
            None => true,
        };
        if cut {
            self.cut = None;
            return Poll::Ready(Err(aborted()));
        }
        Poll::Pending
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for CutIo<T> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        self.check()?;
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        self.or_cut(cx, polled)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for CutIo<T> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        self.check()?;
        let polled = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.or_cut(cx, polled)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.check()?;
        let polled = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.or_cut(cx, polled)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.check()?;
        let polled = Pin::new(&mut self.inner).poll_flush(cx);
        self.or_cut(cx, polled)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.check()?;
        let polled = Pin::new(&mut self.inner).poll_shutdown(cx);
        self.or_cut(cx, polled)
    }
}

impl<T: Connected> Connected for CutIo<T> {
    type ConnectInfo = T::ConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.inner.connect_info()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn a_cut_wakes_a_blocked_read_and_fails_writes_and_a_dropped_switch_cuts_nothing() {
        let switch = CutSwitch::new();
        let (ours, mut theirs) = tokio::io::duplex(64);
        let mut ours = switch.wrapper().wrap(ours);
        ours.write_all(b"before").await.expect("writes before the cut");
        let mut got = [0u8; 6];
        theirs.read_exact(&mut got).await.expect("read");
        let blocked = tokio::spawn(async move {
            let mut buf = [0u8; 1];
            let read = ours.read(&mut buf).await;
            (read.map_err(|e| e.kind()), ours.write_all(b"after").await.map_err(|e| e.kind()))
        });
        switch.cut();
        let (read, write) = blocked.await.expect("the blocked read was woken");
        assert_eq!(read, Err(io::ErrorKind::ConnectionAborted));
        assert_eq!(write, Err(io::ErrorKind::ConnectionAborted));

        let switch = CutSwitch::new();
        let (ours, mut theirs) = tokio::io::duplex(64);
        let mut ours = switch.wrapper().wrap(ours);
        drop(switch);
        theirs.write_all(b"x").await.expect("write");
        let mut buf = [0u8; 1];
        assert_eq!(ours.read(&mut buf).await.expect("still reads"), 1);
    }
}
