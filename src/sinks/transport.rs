//! Sockets of the sinks: UDP (one message per datagram, best effort), TCP and TLS streams
//! (tokio-rustls), the local unix datagram socket, and standard output.
//!
//! A [`Connector`] holds what is fixed for a sink (address, TLS client) and opens a
//! [`Connection`]; DNS is resolved again on every connect. Streams are written with
//! `write_all` + `flush` under a timeout. [`Connection::is_healthy`] reads without blocking to
//! notice a peer that closed or reset the connection, so the delivery worker does not write
//! into, or acknowledge events sent over, a dead stream.

use crate::config::{SinkKind, TlsConfig, Transport};
use crate::sinks::frames::Frames;
use crate::sinks::tls::{TlsClient, TlsSetupError};
use futures::FutureExt;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket, UnixDatagram};

/// Largest UDP payload over IPv4.
pub const MAX_UDP_PAYLOAD: usize = 65_507;

/// Why a connect or send failed.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// The TLS client could not be set up (bad CA, certificate or key file).
    #[error(transparent)]
    TlsSetup(#[from] TlsSetupError),
    /// Socket error.
    #[error("{op} {address}: {source}")]
    Io {
        /// `connect`, `send` or `tls handshake`.
        op: &'static str,
        /// The sink address.
        address: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Connect or write did not finish in time.
    #[error("{op} {address}: timed out")]
    Timeout {
        /// `connect` or `send`.
        op: &'static str,
        /// The sink address.
        address: String,
    },
    /// The peer closed or reset the stream.
    #[error("{address}: connection closed by peer")]
    PeerClosed {
        /// The sink address.
        address: String,
    },
    /// A datagram would exceed the transport's limit.
    #[error("message of {0} bytes is too large for one datagram")]
    DatagramTooLarge(usize),
}

/// What is fixed for one sink: where to connect and how.
#[derive(Clone)]
pub struct Connector {
    target: Target,
    timeout: Duration,
}

#[derive(Clone)]
enum Target {
    Stdout,
    Udp(String),
    Tcp(String),
    Tls(String, TlsClient),
    Unix(String),
}

/// An open connection of a sink.
pub enum Connection {
    /// Standard output, one event a line.
    Stdout(tokio::io::Stdout),
    /// A connected UDP socket.
    Udp(UdpSocket, String),
    /// A TCP stream.
    Tcp(TcpStream, String),
    /// A TLS stream.
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>, String),
    /// A connected unix datagram socket.
    Unix(UnixDatagram, String),
}

impl Connector {
    /// Prepares the connector of a sink; fails only on unusable TLS files or names.
    /// `timeout` bounds every connect, handshake and write.
    pub fn new(kind: &SinkKind, timeout: Duration) -> Result<Self, TransportError> {
        let target = match kind {
            SinkKind::Stdout => Target::Stdout,
            SinkKind::Syslog(syslog) => {
                let address = syslog.address.clone();
                match syslog.transport {
                    Transport::Udp => Target::Udp(address),
                    Transport::Tcp => Target::Tcp(address),
                    Transport::Unix => Target::Unix(address),
                    Transport::Tls => {
                        let tls = syslog.tls.clone().unwrap_or(TlsConfig {
                            ca_file: None,
                            client_certificate_file: None,
                            client_key_file: None,
                            server_name: None,
                        });
                        let client = TlsClient::new(&tls, &address)?;
                        Target::Tls(address, client)
                    }
                }
            }
        };
        Ok(Self { target, timeout })
    }

    /// Opens a connection (and, for TLS, completes the handshake).
    pub async fn connect(&self) -> Result<Connection, TransportError> {
        let timeout = self.timeout;
        match &self.target {
            Target::Stdout => Ok(Connection::Stdout(tokio::io::stdout())),
            Target::Udp(address) => {
                let socket = timed(timeout, "connect", address, udp_connect(address)).await?;
                Ok(Connection::Udp(socket, address.clone()))
            }
            Target::Tcp(address) => {
                let stream = timed(timeout, "connect", address, tcp_connect(address)).await?;
                Ok(Connection::Tcp(stream, address.clone()))
            }
            Target::Tls(address, client) => {
                let stream = timed(timeout, "connect", address, tcp_connect(address)).await?;
                let handshake = client.connector.connect(client.server_name.clone(), stream);
                let tls = timed(timeout, "tls handshake", address, handshake).await?;
                Ok(Connection::Tls(Box::new(tls), address.clone()))
            }
            Target::Unix(path) => {
                let socket = UnixDatagram::unbound().map_err(|e| io_error("connect", path, e))?;
                socket
                    .connect(path)
                    .map_err(|e| io_error("connect", path, e))?;
                Ok(Connection::Unix(socket, path.clone()))
            }
        }
    }
}

async fn udp_connect(address: &str) -> std::io::Result<UdpSocket> {
    let peer = tokio::net::lookup_host(address)
        .await?
        .next()
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::NotFound, "no address"))?;
    let local = if peer.is_ipv4() {
        "0.0.0.0:0"
    } else {
        "[::]:0"
    };
    let socket = UdpSocket::bind(local).await?;
    socket.connect(peer).await?;
    Ok(socket)
}

async fn tcp_connect(address: &str) -> std::io::Result<TcpStream> {
    let stream = TcpStream::connect(address).await?;
    stream.set_nodelay(true)?;
    Ok(stream)
}

async fn timed<T>(
    timeout: Duration,
    op: &'static str,
    address: &str,
    future: impl std::future::Future<Output = std::io::Result<T>>,
) -> Result<T, TransportError> {
    match tokio::time::timeout(timeout, future).await {
        Ok(result) => result.map_err(|e| io_error(op, address, e)),
        Err(_) => Err(TransportError::Timeout {
            op,
            address: address.to_owned(),
        }),
    }
}

fn io_error(op: &'static str, address: &str, source: std::io::Error) -> TransportError {
    TransportError::Io {
        op,
        address: address.to_owned(),
        source,
    }
}

impl Connection {
    /// True for TCP and TLS, where a successful write means the bytes reached the kernel of a
    /// live connection; UDP and the unix datagram socket are best effort.
    pub fn is_stream(&self) -> bool {
        matches!(self, Self::Tcp(..) | Self::Tls(..))
    }

    /// Sends framed messages: one datagram each for UDP and unix, as one write for streams.
    pub(crate) async fn send(
        &mut self,
        messages: &Frames,
        timeout: Duration,
    ) -> Result<(), TransportError> {
        match self {
            Self::Udp(socket, address) => {
                for message in messages.iter() {
                    if message.len() > MAX_UDP_PAYLOAD {
                        return Err(TransportError::DatagramTooLarge(message.len()));
                    }
                    timed(timeout, "send", address, socket.send(message)).await?;
                }
                Ok(())
            }
            Self::Unix(socket, path) => {
                for message in messages.iter() {
                    timed(timeout, "send", path, socket.send(message)).await?;
                }
                Ok(())
            }
            Self::Stdout(out) => write_stream(out, "stdout", messages, timeout).await,
            Self::Tcp(stream, address) => write_stream(stream, address, messages, timeout).await,
            Self::Tls(stream, address) => {
                write_stream(stream.as_mut(), address, messages, timeout).await
            }
        }
    }

    /// Checks, without blocking, that a stream's peer has not closed or reset it. Incoming
    /// bytes (syslog receivers send none) are discarded. Datagram sockets are always healthy.
    pub fn is_healthy(&mut self) -> bool {
        let mut scratch = [0u8; 512];
        match self {
            Self::Tcp(stream, _) => loop {
                match stream.try_read(&mut scratch) {
                    Ok(0) => return false,
                    Ok(_) => continue,
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return true,
                    Err(_) => return false,
                }
            },
            Self::Tls(stream, _) => loop {
                match stream.read(&mut scratch).now_or_never() {
                    None => return true,
                    Some(Ok(0)) | Some(Err(_)) => return false,
                    Some(Ok(_)) => continue,
                }
            },
            _ => true,
        }
    }

    /// Closes the connection politely (TLS `close_notify`, TCP FIN), bounded by `timeout`.
    pub async fn close(self, timeout: Duration) {
        let _ = tokio::time::timeout(timeout, async move {
            match self {
                Self::Tcp(mut stream, _) => stream.shutdown().await,
                Self::Tls(mut stream, _) => stream.shutdown().await,
                Self::Stdout(mut out) => out.flush().await,
                Self::Udp(..) | Self::Unix(..) => Ok(()),
            }
        })
        .await;
    }
}

async fn write_stream<W: tokio::io::AsyncWrite + Unpin>(
    writer: &mut W,
    address: &str,
    messages: &Frames,
    timeout: Duration,
) -> Result<(), TransportError> {
    let write = async {
        writer.write_all(messages.as_bytes()).await?;
        writer.flush().await
    };
    timed(timeout, "send", address, write).await
}
