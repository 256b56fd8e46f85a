//! Serial links: a null-modem cable between two nodes, Heartbeat's link of last resort.
//!
//! The line is opened raw (cfmakeraw) at the configured baud, 8N1, no flow control,
//! and never becomes our controlling terminal. A byte stream has no datagram
//! boundaries and a cable can garble or drop bytes, so each datagram travels as a
//! SLIP frame (RFC 1055: END-delimited, END/ESC escaped) carrying the payload and a
//! CRC-32 of it. A receiver that joins mid-frame, or sees noise, loses at most the
//! frame in progress: the next END resynchronises, and a frame whose CRC does not
//! match is dropped and counted, never passed on.

use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use nix::fcntl::OFlag;
use nix::sys::stat::Mode;
use nix::sys::termios::{
    self, BaudRate, ControlFlags, InputFlags, SetArg, SpecialCharacterIndices,
};
use tokio::io::Interest;
use tokio::io::unix::AsyncFd;

use super::{Datagram, MAX_DATAGRAM, Source};

const END: u8 = 0xC0;
const ESC: u8 = 0xDB;
const ESC_END: u8 = 0xDC;
const ESC_ESC: u8 = 0xDD;
const CRC_LEN: usize = 4;

type SetupError = (String, io::Error);

/// CRC-32 (IEEE 802.3, as in zlib and Ethernet), table-driven.
pub fn crc32(data: &[u8]) -> u32 {
    const TABLE: [u32; 256] = {
        let mut t = [0u32; 256];
        let mut i = 0;
        while i < 256 {
            let mut c = i as u32;
            let mut k = 0;
            while k < 8 {
                c = if c & 1 != 0 {
                    0xEDB8_8320 ^ (c >> 1)
                } else {
                    c >> 1
                };
                k += 1;
            }
            t[i] = c;
            i += 1;
        }
        t
    };
    let mut crc = !0u32;
    for &b in data {
        crc = TABLE[((crc ^ u32::from(b)) & 0xFF) as usize] ^ (crc >> 8);
    }
    !crc
}

/// One datagram as a frame on the wire: END, escaped (payload ‖ CRC-32 LE), END.
/// The leading END closes whatever garbage preceded it on the line.
pub fn frame(payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + CRC_LEN + 8);
    out.push(END);
    let crc = crc32(payload).to_le_bytes();
    for &b in payload.iter().chain(crc.iter()) {
        match b {
            END => out.extend_from_slice(&[ESC, ESC_END]),
            ESC => out.extend_from_slice(&[ESC, ESC_ESC]),
            b => out.push(b),
        }
    }
    out.push(END);
    out
}

/// Turns a byte stream back into datagrams, dropping garbled frames.
#[derive(Debug, Default)]
pub struct Deframer {
    buf: Vec<u8>,
    escaped: bool,
    /// The frame in progress is already known bad (overlong or bad escape).
    corrupt: bool,
    dropped: u64,
}

impl Deframer {
    pub fn new() -> Self {
        Self::default()
    }

    /// Frames dropped so far (bad CRC, bad escape, too short or too long).
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Feed bytes; complete, intact payloads are appended to `out`.
    pub fn push(&mut self, bytes: &[u8], out: &mut Vec<Vec<u8>>) {
        for &b in bytes {
            if b == END {
                self.end_frame(out);
                continue;
            }
            if self.corrupt {
                continue;
            }
            let byte = if self.escaped {
                self.escaped = false;
                match b {
                    ESC_END => END,
                    ESC_ESC => ESC,
                    _ => {
                        self.corrupt = true;
                        continue;
                    }
                }
            } else if b == ESC {
                self.escaped = true;
                continue;
            } else {
                b
            };
            if self.buf.len() >= MAX_DATAGRAM + CRC_LEN {
                self.corrupt = true;
                self.buf.clear();
                continue;
            }
            self.buf.push(byte);
        }
    }

    fn end_frame(&mut self, out: &mut Vec<Vec<u8>>) {
        let empty = self.buf.is_empty() && !self.corrupt && !self.escaped;
        if !empty {
            match self.check() {
                Some(payload) => out.push(payload),
                None => self.dropped += 1,
            }
        }
        self.buf.clear();
        self.escaped = false;
        self.corrupt = false;
    }

    fn check(&self) -> Option<Vec<u8>> {
        if self.corrupt || self.escaped || self.buf.len() <= CRC_LEN {
            return None;
        }
        let (payload, crc) = self.buf.split_at(self.buf.len() - CRC_LEN);
        let want = u32::from_le_bytes([crc[0], crc[1], crc[2], crc[3]]);
        (crc32(payload) == want).then(|| payload.to_vec())
    }
}

pub struct SerialSender {
    fd: Arc<AsyncFd<OwnedFd>>,
}

pub struct SerialReceiver {
    fd: Arc<AsyncFd<OwnedFd>>,
    deframer: Deframer,
    ready: std::collections::VecDeque<Vec<u8>>,
    buf: Vec<u8>,
    /// When a "garbled frames" warning was last logged, and the count then.
    warned: Option<(Instant, u64)>,
    link: String,
}

impl SerialSender {
    /// Write one frame. Waits while the line's output buffer is full; the daemon
    /// calls this from a task of its own so a stalled cable never stalls the loop.
    pub async fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
        let frame = frame(bytes);
        let mut written = 0;
        while written < frame.len() {
            let rest = &frame[written..];
            let n = self
                .fd
                .async_io(Interest::WRITABLE, |fd| {
                    nix::unistd::write(fd, rest).map_err(io::Error::from)
                })
                .await?;
            written += n;
        }
        Ok(())
    }
}

impl SerialReceiver {
    pub async fn recv(&mut self) -> io::Result<Datagram> {
        loop {
            if let Some(bytes) = self.ready.pop_front() {
                return Ok(Datagram {
                    bytes,
                    from: Source::Serial,
                });
            }
            let buf = &mut self.buf;
            let n = self
                .fd
                .async_io(Interest::READABLE, |fd| {
                    nix::unistd::read(fd, buf).map_err(io::Error::from)
                })
                .await?;
            if n == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the serial line was closed",
                ));
            }
            let mut out = Vec::new();
            self.deframer.push(&self.buf[..n], &mut out);
            self.ready.extend(out);
            self.warn_dropped();
        }
    }

    pub fn dropped(&self) -> u64 {
        self.deframer.dropped()
    }

    /// At most one warning a minute about garbled frames, with the count since the last.
    fn warn_dropped(&mut self) {
        let total = self.deframer.dropped();
        let (due, logged) = match self.warned {
            None => (true, 0),
            Some((at, n)) => (at.elapsed() >= Duration::from_secs(60), n),
        };
        if total > logged && due {
            tracing::warn!(
                LINK = %self.link,
                "serial link {}: dropped {} garbled frame(s) (bad CRC or framing)",
                self.link,
                total - logged
            );
            self.warned = Some((Instant::now(), total));
        }
    }
}

fn baud_rate(baud: u32) -> Option<BaudRate> {
    Some(match baud {
        1200 => BaudRate::B1200,
        2400 => BaudRate::B2400,
        4800 => BaudRate::B4800,
        9600 => BaudRate::B9600,
        19200 => BaudRate::B19200,
        38400 => BaudRate::B38400,
        57600 => BaudRate::B57600,
        115200 => BaudRate::B115200,
        230400 => BaudRate::B230400,
        460800 => BaudRate::B460800,
        _ => return None,
    })
}

/// Open and configure the line: O_NOCTTY so it never becomes our controlling
/// terminal, O_NONBLOCK for the reactor; raw 8N1, no flow control, modem lines ignored.
pub fn open(
    link: &str,
    device: &Path,
    baud: u32,
) -> Result<(SerialSender, SerialReceiver), SetupError> {
    let name = device.display().to_string();
    let speed = baud_rate(baud).ok_or_else(|| {
        (
            format!("unsupported baud rate {baud}"),
            io::Error::from(io::ErrorKind::InvalidInput),
        )
    })?;
    let fd: OwnedFd = nix::fcntl::open(
        device,
        OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| (format!("cannot open {name}"), io::Error::from(e)))?;
    let terr = |what: &str, e: nix::Error| (format!("{what} on {name}"), io::Error::from(e));
    let mut t =
        termios::tcgetattr(fd.as_fd()).map_err(|e| terr("cannot read the line settings", e))?;
    termios::cfmakeraw(&mut t);
    termios::cfsetspeed(&mut t, speed).map_err(|e| terr("cannot set the baud rate", e))?;
    t.control_flags &= !(ControlFlags::CSIZE
        | ControlFlags::PARENB
        | ControlFlags::CSTOPB
        | ControlFlags::CRTSCTS);
    t.control_flags |= ControlFlags::CS8 | ControlFlags::CLOCAL | ControlFlags::CREAD;
    t.input_flags &= !(InputFlags::IXON | InputFlags::IXOFF | InputFlags::IXANY);
    t.control_chars[SpecialCharacterIndices::VMIN as usize] = 1;
    t.control_chars[SpecialCharacterIndices::VTIME as usize] = 0;
    termios::tcsetattr(fd.as_fd(), SetArg::TCSANOW, &t)
        .map_err(|e| terr("cannot set raw mode", e))?;
    // Stale bytes from before we opened the line would only be a garbled first frame.
    let _ = termios::tcflush(fd.as_fd(), termios::FlushArg::TCIOFLUSH);
    // Keep a second process (a getty, a stray daemon) off the line.
    // SAFETY: TIOCEXCL takes no argument; the fd is valid.
    let _ = unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCEXCL) };
    // SAFETY: the OwnedFd is open and moves into the AsyncFd, which alone owns it.
    let fd = unsafe { AsyncFd::register(fd) }.map_err(|e| {
        let (_, cause) = e.into_parts();
        (format!("cannot register {name} with the runtime"), cause)
    })?;
    let fd = Arc::new(fd);
    Ok((
        SerialSender { fd: fd.clone() },
        SerialReceiver {
            fd,
            deframer: Deframer::new(),
            ready: Default::default(),
            buf: vec![0; 4096],
            warned: None,
            link: link.to_string(),
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(bytes: &[u8]) -> (Vec<Vec<u8>>, u64) {
        let mut d = Deframer::new();
        let mut out = Vec::new();
        d.push(bytes, &mut out);
        (out, d.dropped())
    }

    #[test]
    fn crc32_known_value() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
    }

    #[test]
    fn round_trip_with_special_bytes() {
        let payload = vec![END, ESC, 1, ESC_END, ESC_ESC, END, END];
        let (out, dropped) = decode(&frame(&payload));
        assert_eq!(out, vec![payload]);
        assert_eq!(dropped, 0);
    }

    #[test]
    fn garbage_and_truncation_resynchronise() {
        let mut wire = b"noise".to_vec();
        wire.extend(frame(b"one"));
        wire.extend([0x17, ESC, 0x42, 0x99]);
        let two = frame(b"two");
        wire.extend(&two[..two.len() - 3]); // truncated
        wire.extend(frame(b"three"));
        let mut flipped = frame(b"four");
        flipped[2] ^= 0x01;
        wire.extend(flipped);
        wire.extend(frame(b"five"));
        let (out, dropped) = decode(&wire);
        assert_eq!(
            out,
            vec![b"one".to_vec(), b"three".to_vec(), b"five".to_vec()]
        );
        assert_eq!(dropped, 4);
    }

    #[test]
    fn split_across_reads() {
        let wire = frame(b"hello world");
        let mut d = Deframer::new();
        let mut out = Vec::new();
        for b in &wire {
            d.push(std::slice::from_ref(b), &mut out);
        }
        assert_eq!(out, vec![b"hello world".to_vec()]);
    }

    #[test]
    fn overlong_frame_is_dropped() {
        let mut wire = vec![END];
        wire.extend(std::iter::repeat_n(0x41, MAX_DATAGRAM * 3));
        wire.extend(frame(b"after"));
        let (out, dropped) = decode(&wire);
        assert_eq!(out, vec![b"after".to_vec()]);
        assert_eq!(dropped, 1);
    }
}
