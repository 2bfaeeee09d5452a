//! webrtc's tokio runtime with bigger UDP socket buffers.
//!
//! webrtc 0.21 binds its UDP sockets with the OS default buffers (212 KiB receive on Linux).
//! At data-channel rates the driver falls briefly behind the socket, the kernel drops the
//! overflow (`UdpRcvbufErrors` in `nstat`), and SCTP treats each drop as congestion: the
//! window halves and a lost tail waits out the retransmission timer. On loopback that made
//! one transfer run anywhere between 60 and 140 MB/s. webrtc has no buffer setting, but every
//! socket passes through [`Runtime::wrap_udp_socket`], so this wrapper sizes it there and
//! delegates everything else to [`TokioRuntime`].
//!
//! The kernel caps the request at `net.core.rmem_max`/`wmem_max`; asking for more is not an
//! error, so on a host with small limits this degrades to today's behaviour, never fails.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use webrtc::runtime::{
    AsyncInterval, AsyncTcpListener, AsyncTcpStream, AsyncUdpSocket, JoinHandle, Runtime,
    TokioRuntime,
};

/// [`TokioRuntime`] that sets `SO_RCVBUF`/`SO_SNDBUF` on every UDP socket it wraps.
#[derive(Debug)]
pub struct BufferedUdpRuntime {
    inner: TokioRuntime,
    /// Bytes requested for each direction; 0 leaves the OS default.
    udp_buffer: usize,
}

impl BufferedUdpRuntime {
    /// A runtime for webrtc whose UDP sockets ask for `udp_buffer` bytes each way.
    pub fn shared(udp_buffer: usize) -> Arc<dyn Runtime> {
        Arc::new(BufferedUdpRuntime {
            inner: TokioRuntime,
            udp_buffer,
        })
    }
}

/// Ask for `bytes` in both directions; returns what the kernel granted (receive, send).
/// Failure to resize is logged, not returned: a default-sized socket still works.
pub(crate) fn size_udp_buffers(socket: &std::net::UdpSocket, bytes: usize) -> (usize, usize) {
    let sock = socket2::SockRef::from(socket);
    if bytes > 0 {
        if let Err(e) = sock.set_recv_buffer_size(bytes) {
            tracing::debug!("SO_RCVBUF {bytes}: {e}");
        }
        if let Err(e) = sock.set_send_buffer_size(bytes) {
            tracing::debug!("SO_SNDBUF {bytes}: {e}");
        }
    }
    let granted = (
        sock.recv_buffer_size().unwrap_or(0),
        sock.send_buffer_size().unwrap_or(0),
    );
    tracing::debug!(
        requested = bytes,
        recv = granted.0,
        send = granted.1,
        "UDP socket buffers"
    );
    granted
}

impl Runtime for BufferedUdpRuntime {
    fn spawn(&self, future: Pin<Box<dyn Future<Output = ()> + Send>>) -> Box<dyn JoinHandle> {
        self.inner.spawn(future)
    }

    fn spawn_reactor(
        &self,
        reactor_pool_size: usize,
        future: Pin<Box<dyn Future<Output = ()> + Send>>,
    ) -> Box<dyn JoinHandle> {
        self.inner.spawn_reactor(reactor_pool_size, future)
    }

    fn wrap_udp_socket(&self, socket: std::net::UdpSocket) -> io::Result<Arc<dyn AsyncUdpSocket>> {
        size_udp_buffers(&socket, self.udp_buffer);
        self.inner.wrap_udp_socket(socket)
    }

    fn wrap_tcp_listener(
        &self,
        listener: std::net::TcpListener,
    ) -> io::Result<Arc<dyn AsyncTcpListener>> {
        self.inner.wrap_tcp_listener(listener)
    }

    fn connect_tcp<'a>(
        &'a self,
        remote_addr: SocketAddr,
    ) -> Pin<Box<dyn Future<Output = io::Result<Arc<dyn AsyncTcpStream>>> + Send + 'a>> {
        self.inner.connect_tcp(remote_addr)
    }

    fn resolve_host<'a>(
        &'a self,
        host: &'a str,
    ) -> Pin<Box<dyn Future<Output = io::Result<Vec<SocketAddr>>> + Send + 'a>> {
        self.inner.resolve_host(host)
    }

    fn now(&self) -> Instant {
        self.inner.now()
    }

    fn sleep(&self, duration: Duration) -> Pin<Box<dyn Future<Output = ()> + Send + 'static>> {
        self.inner.sleep(duration)
    }

    fn interval(&self, period: Duration) -> Box<dyn AsyncInterval> {
        self.inner.interval(period)
    }

    fn block_on(&self, future: Pin<Box<dyn Future<Output = ()> + '_>>) {
        self.inner.block_on(future)
    }

    fn yield_now(&self) -> Pin<Box<dyn Future<Output = ()> + Send + 'static>> {
        self.inner.yield_now()
    }

    fn name(&self) -> &'static str {
        "tokio+udp-buffers"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffers_grow_up_to_what_the_kernel_allows() {
        let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let (default_recv, _) = size_udp_buffers(&sock, 0);
        let (recv, send) = size_udp_buffers(&sock, 4 * 1024 * 1024);
        // Linux reports double the request, capped by rmem_max; any cap above the default
        // must show as growth. A host whose cap equals the default cannot show it.
        let cap = std::fs::read_to_string("/proc/sys/net/core/rmem_max")
            .ok()
            .and_then(|s| s.trim().parse::<usize>().ok());
        if cap.is_some_and(|c| c * 2 > default_recv) {
            assert!(recv > default_recv, "recv {recv} <= default {default_recv}");
        }
        assert!(send > 0);
    }
}
