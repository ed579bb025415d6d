//! Batched UDP I/O on Linux: up to [`BATCH`] datagrams per `recvmmsg`, their answers sent back
//! with one `sendmmsg`, so a busy server pays one system call and one wakeup per batch instead
//! of per query. Fixed buffers allocated once per socket; nothing is allocated per query.
//! The `unsafe` of the crate is kept to filling the kernel's `mmsghdr` arrays (and one read of
//! the thread CPU clock in `metrics`).

use std::io;
use std::mem::{size_of, zeroed};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::RawFd;
use std::ptr::null_mut;

/// Datagrams per system call.
pub const BATCH: usize = 32;
/// Largest query accepted (a longer datagram is dropped: no DNS query is that big).
const SLOT: usize = 4096;

/// Receive and send buffers of one UDP socket.
pub struct Batch {
    rx: Box<[[u8; SLOT]]>,
    rx_addr: Box<[libc::sockaddr_storage]>,
    rx_iov: Box<[libc::iovec]>,
    rx_hdr: Box<[libc::mmsghdr]>,
    /// Headers the kernel filled in the last receive.
    received: usize,
    tx: Vec<Vec<u8>>,
    /// For each reply, the received datagram it answers (its source is the destination).
    tx_query: Box<[usize]>,
    tx_iov: Box<[libc::iovec]>,
    tx_hdr: Box<[libc::mmsghdr]>,
}

impl Default for Batch {
    fn default() -> Self {
        // SAFETY: all-zero is a valid value of these plain C structs.
        let z = || unsafe { zeroed::<libc::sockaddr_storage>() };
        let hdr = || unsafe { zeroed::<libc::mmsghdr>() };
        let iov = || libc::iovec {
            iov_base: null_mut(),
            iov_len: 0,
        };
        let mut b = Batch {
            rx: vec![[0u8; SLOT]; BATCH].into_boxed_slice(),
            rx_addr: (0..BATCH).map(|_| z()).collect(),
            rx_iov: (0..BATCH).map(|_| iov()).collect(),
            rx_hdr: (0..BATCH).map(|_| hdr()).collect(),
            received: BATCH,
            tx: (0..BATCH).map(|_| Vec::with_capacity(1232)).collect(),
            tx_query: vec![0; BATCH].into_boxed_slice(),
            tx_iov: (0..BATCH).map(|_| iov()).collect(),
            tx_hdr: (0..BATCH).map(|_| hdr()).collect(),
        };
        // The receive headers point into the boxed buffers, which never move (moving the
        // `Batch` moves only the boxes' pointers), so they are set up once.
        for i in 0..BATCH {
            b.rx_iov[i] = libc::iovec {
                iov_base: b.rx[i].as_mut_ptr().cast(),
                iov_len: SLOT,
            };
            let h = &mut b.rx_hdr[i].msg_hdr;
            h.msg_name = (&mut b.rx_addr[i] as *mut libc::sockaddr_storage).cast();
            h.msg_iov = &mut b.rx_iov[i];
            h.msg_iovlen = 1;
            h.msg_control = null_mut();
            h.msg_controllen = 0;
        }
        b
    }
}

impl Batch {
    /// Waits for at least one datagram (or the socket's receive timeout) and takes every
    /// datagram already queued, up to [`BATCH`]. Returns how many.
    pub fn recv(&mut self, fd: RawFd) -> io::Result<usize> {
        // Only the headers the kernel filled last time need their lengths and flags reset:
        // at a low rate that is one header per wake-up, not all of them.
        for h in &mut self.rx_hdr[..self.received] {
            h.msg_hdr.msg_namelen = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            h.msg_hdr.msg_flags = 0;
            h.msg_len = 0;
        }
        // SAFETY: every header points into buffers owned by `self`, alive for the call.
        let n = unsafe {
            libc::recvmmsg(
                fd,
                self.rx_hdr.as_mut_ptr(),
                BATCH as libc::c_uint,
                libc::MSG_WAITFORONE,
                null_mut(),
            )
        };
        if n < 0 {
            // A timeout or an error: reset every header next time, whatever the kernel did.
            self.received = BATCH;
            Err(io::Error::last_os_error())
        } else {
            self.received = (n as usize).min(BATCH);
            Ok(self.received)
        }
    }

    /// Answers the `n` received datagrams with `answer(query, source, reply) -> send?` and
    /// sends every reply with `sendmmsg`. Datagrams longer than a slot are dropped.
    pub fn answer_and_send(
        &mut self,
        fd: RawFd,
        n: usize,
        mut answer: impl FnMut(&[u8], IpAddr, &mut Vec<u8>) -> bool,
    ) -> io::Result<()> {
        let mut out = 0;
        for i in 0..n.min(BATCH) {
            let h = &self.rx_hdr[i];
            if h.msg_hdr.msg_flags & libc::MSG_TRUNC != 0 {
                continue;
            }
            let Some(src) = to_socket_addr(&self.rx_addr[i]) else {
                continue;
            };
            let len = (h.msg_len as usize).min(SLOT);
            let reply = &mut self.tx[out];
            reply.clear();
            if !answer(&self.rx[i][..len], src.ip(), reply) {
                continue;
            }
            self.tx_query[out] = i;
            out += 1;
        }
        self.send(fd, out)
    }

    fn send(&mut self, fd: RawFd, n: usize) -> io::Result<()> {
        for i in 0..n {
            self.tx_iov[i] = libc::iovec {
                iov_base: self.tx[i].as_mut_ptr().cast(),
                iov_len: self.tx[i].len(),
            };
            // The reply goes to the source address the kernel wrote for its query.
            let q = self.tx_query[i];
            let namelen = self.rx_hdr[q].msg_hdr.msg_namelen;
            let h = &mut self.tx_hdr[i];
            h.msg_hdr.msg_name = (&mut self.rx_addr[q] as *mut libc::sockaddr_storage).cast();
            h.msg_hdr.msg_namelen = namelen;
            h.msg_hdr.msg_iov = &mut self.tx_iov[i];
            h.msg_hdr.msg_iovlen = 1;
            h.msg_hdr.msg_control = null_mut();
            h.msg_hdr.msg_controllen = 0;
            h.msg_hdr.msg_flags = 0;
            h.msg_len = 0;
        }
        let mut sent = 0;
        let mut result = Ok(());
        while sent < n {
            // SAFETY: headers `sent..n` point into buffers owned by `self`.
            let r = unsafe {
                libc::sendmmsg(
                    fd,
                    self.tx_hdr.as_mut_ptr().add(sent),
                    (n - sent) as libc::c_uint,
                    libc::MSG_DONTWAIT,
                )
            };
            if r < 0 {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                // The first unsent reply failed (e.g. an unreachable client): skip it.
                result = Err(e);
                sent += 1;
            } else {
                sent += (r as usize).max(1);
            }
        }
        result
    }
}

/// Sends UDP answers without path MTU discovery, as gdnsd, Knot and NSD do: DF is not set and
/// ICMP "fragmentation needed" messages (which anyone can forge) are ignored, so a spoofed
/// ICMP can neither shrink the answers nor make the kernel keep per-destination state.
/// `IP_PMTUDISC_OMIT` where the kernel has it (Linux 3.15+), `IP_PMTUDISC_DONT` otherwise.
pub fn omit_path_mtu(fd: RawFd, ipv6: bool) -> io::Result<()> {
    let (level, name, omit, dont) = if ipv6 {
        (
            libc::IPPROTO_IPV6,
            libc::IPV6_MTU_DISCOVER,
            libc::IPV6_PMTUDISC_OMIT,
            libc::IPV6_PMTUDISC_DONT,
        )
    } else {
        (
            libc::IPPROTO_IP,
            libc::IP_MTU_DISCOVER,
            libc::IP_PMTUDISC_OMIT,
            libc::IP_PMTUDISC_DONT,
        )
    };
    let set = |value: libc::c_int| {
        // SAFETY: a plain int option on a socket the caller owns.
        let r = unsafe {
            libc::setsockopt(
                fd,
                level,
                name,
                (&value as *const libc::c_int).cast(),
                size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        if r == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    };
    set(omit).or_else(|_| set(dont))
}

/// The source address of a datagram.
fn to_socket_addr(ss: &libc::sockaddr_storage) -> Option<SocketAddr> {
    match ss.ss_family as libc::c_int {
        libc::AF_INET => {
            // SAFETY: the family says the storage holds a sockaddr_in.
            let a = unsafe { &*(ss as *const libc::sockaddr_storage).cast::<libc::sockaddr_in>() };
            let ip = Ipv4Addr::from(u32::from_be(a.sin_addr.s_addr));
            Some(SocketAddr::new(IpAddr::V4(ip), u16::from_be(a.sin_port)))
        }
        libc::AF_INET6 => {
            // SAFETY: the family says the storage holds a sockaddr_in6.
            let a = unsafe { &*(ss as *const libc::sockaddr_storage).cast::<libc::sockaddr_in6>() };
            let ip = Ipv6Addr::from(a.sin6_addr.s6_addr);
            Some(SocketAddr::new(IpAddr::V6(ip), u16::from_be(a.sin6_port)))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;
    use std::time::Duration;

    /// The option reads back as set, for both families.
    #[test]
    fn path_mtu_discovery_is_off() {
        for (bind, ipv6) in [("127.0.0.1:0", false), ("[::1]:0", true)] {
            let s = std::net::UdpSocket::bind(bind).unwrap();
            omit_path_mtu(s.as_raw_fd(), ipv6).unwrap();
            let (level, name) = if ipv6 {
                (libc::IPPROTO_IPV6, libc::IPV6_MTU_DISCOVER)
            } else {
                (libc::IPPROTO_IP, libc::IP_MTU_DISCOVER)
            };
            let mut v: libc::c_int = -1;
            let mut len = size_of::<libc::c_int>() as libc::socklen_t;
            // SAFETY: reads an int option into a local.
            let r = unsafe {
                libc::getsockopt(
                    s.as_raw_fd(),
                    level,
                    name,
                    (&mut v as *mut libc::c_int).cast(),
                    &mut len,
                )
            };
            assert_eq!(r, 0);
            let omit = if ipv6 {
                libc::IPV6_PMTUDISC_OMIT
            } else {
                libc::IP_PMTUDISC_OMIT
            };
            assert_eq!(v, omit, "{bind}");
        }
    }

    /// Headers set up once are reused from receive to receive: a slot that held an
    /// oversized datagram, or a datagram from another sender, serves the next one whole.
    #[test]
    fn slots_are_reused_across_receives() {
        let server = std::net::UdpSocket::bind("[::]:0").unwrap();
        server
            .set_read_timeout(Some(Duration::from_secs(2)))
            .unwrap();
        let port = server.local_addr().unwrap().port();
        let v4 = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let v6 = std::net::UdpSocket::bind("[::1]:0").unwrap();
        let mut b = Batch::default();
        let answered = |b: &mut Batch| {
            let n = b.recv(server.as_raw_fd()).unwrap();
            let mut seen = Vec::new();
            b.answer_and_send(server.as_raw_fd(), n, |q, src, _| {
                seen.push((src.to_canonical(), q.len()));
                false
            })
            .unwrap();
            seen
        };
        let (a4, a6) = (v4.local_addr().unwrap().ip(), v6.local_addr().unwrap().ip());
        v4.send_to(&vec![1u8; SLOT + 1], ("127.0.0.1", port))
            .unwrap();
        assert_eq!(answered(&mut b), [], "oversized: dropped");
        for _ in 0..3 {
            v4.send_to(b"four", ("127.0.0.1", port)).unwrap();
        }
        std::thread::sleep(Duration::from_millis(50));
        let mut got = Vec::new();
        while got.len() < 3 {
            got.extend(answered(&mut b));
        }
        assert_eq!(got, [(a4, 4); 3]);
        v6.send_to(b"six", ("::1", port)).unwrap();
        assert_eq!(answered(&mut b), [(a6, 3)]);
        v4.send_to(b"4", ("127.0.0.1", port)).unwrap();
        assert_eq!(answered(&mut b), [(a4, 1)]);
    }

    /// Several datagrams from IPv4 and IPv6 clients come in one batch and each reply goes
    /// back to its sender; an oversized datagram is dropped.
    #[test]
    fn batches_replies_to_each_sender() {
        let server = std::net::UdpSocket::bind("[::]:0").unwrap();
        server
            .set_read_timeout(Some(Duration::from_secs(2)))
            .unwrap();
        let port = server.local_addr().unwrap().port();
        let v4 = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let v6 = std::net::UdpSocket::bind("[::1]:0").unwrap();
        for c in [&v4, &v6] {
            c.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        }
        v4.send_to(b"one", ("127.0.0.1", port)).unwrap();
        v6.send_to(b"two", ("::1", port)).unwrap();
        v4.send_to(&vec![7u8; SLOT + 100], ("127.0.0.1", port))
            .unwrap();
        v4.send_to(b"three", ("127.0.0.1", port)).unwrap();
        std::thread::sleep(Duration::from_millis(50));
        let mut b = Batch::default();
        let mut got = 0;
        let mut sources = Vec::new();
        while got < 4 {
            let n = b.recv(server.as_raw_fd()).unwrap();
            got += n;
            b.answer_and_send(server.as_raw_fd(), n, |q, src, out| {
                sources.push(src);
                out.extend_from_slice(b"re:");
                out.extend_from_slice(q);
                true
            })
            .unwrap();
        }
        assert_eq!(sources.len(), 3, "the oversized datagram is not answered");
        let mut buf = [0u8; 64];
        let n = v6.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"re:two");
        let n = v4.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"re:one");
        let n = v4.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"re:three");
        assert!(
            sources
                .iter()
                .any(|s| s.is_ipv6() && s.to_string() == "::1")
        );
    }
}
