//! ASCII authentication (`-Y FILE`), as memcached 1.6.18 has it: the credentials file,
//! and what an unauthenticated connection's input gets.
//!
//! Owns [`AsciiAuth`] (the credentials, reloaded on SIGHUP by `run`'s main thread) and
//! [`step`], which consumes an unauthenticated connection's input one line (or one data
//! block) at a time. The connection calls it while its dialect is `Unauthenticated`
//! (set at accept when `-Y` is given) and nothing else: without `-Y` no request pays
//! for authentication beyond its dialect's match arm.
//!
//! memcached's rules, each checked against Debian's 1.6.18 (`tests/auth.rs`):
//! - the file holds `user:password` lines; at most 8 entries count (later ones are
//!   ignored), a line without `:` (an empty line too) makes the file malformed; the
//!   password ends at `\r`, `\n` or the end of the file. memcached reads the file with
//!   `fgets` into a buffer of the file's size, so the last byte of a file that does not
//!   end in a newline is lost (`a:bc` holds password `b`), a file ending `\r\n` after its
//!   last entry is malformed, and a line of 256 bytes or more is cut; [`parse`] does the
//!   same reads;
//! - at startup a file that cannot be read refuses the start (exit 1), as does a
//!   malformed one; on SIGHUP it is read again and, if that fails, the old entries stay;
//! - until it authenticates, a connection's every line gets `CLIENT_ERROR
//!   unauthenticated` (binary requests too: with `-Y` every connection speaks text, and
//!   `-B binary` refuses to start), except `set <key> <flags> <exptime> <bytes> …`
//!   (five tokens or more; key, flags and exptime ignored), whose data block is `user
//!   password` (tokens split on spaces; `CLIENT_ERROR bad authentication token format`
//!   with fewer than two), must end in `\r\n` (`CLIENT_ERROR bad command line
//!   termination`), and answers `STORED` (even with `noreply`) or `CLIENT_ERROR
//!   authentication failure`; the connection stays open either way, and nothing is
//!   stored. A line over 2048 bytes without a newline closes it, as does a data block
//!   over [`AUTH_BLOCK_MAX_BYTES`] (memcached's read buffer);
//! - `stats` counts every attempt in `auth_cmds` and the failures in `auth_errors`.
//!
//! Differs from 1.6.18 on purpose: memcached answers only one of several requests that
//! reach an unauthenticated connection in one read (its reply object is reused), and
//! ringcache answers each one; a data block over the limit closes the connection at
//! once, where memcached resets it once its read buffer is full.
//!
//! Passwords are compared in constant time (`subtle`); lengths are not secret, as in
//! memcached.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use subtle::ConstantTimeEq;

/// memcached keeps at most this many entries of the file.
const ENTRIES_MAX: usize = 8;
/// memcached reads the file's lines in pieces of at most this many bytes minus one.
const ENTRY_MAX_BYTES: usize = 256;
/// The longest command line an unauthenticated connection may send without a newline.
const LINE_MAX_BYTES: usize = crate::protocol::LINE_MAX_BYTES;
/// The largest data block (with its `\r\n`) an authentication `set` may announce:
/// memcached's 16 KiB read buffer. Over it the connection is closed.
pub const AUTH_BLOCK_MAX_BYTES: usize = 16 * 1024;

const UNAUTHENTICATED: &[u8] = b"CLIENT_ERROR unauthenticated\r\n";
const BAD_TERMINATION: &[u8] = b"CLIENT_ERROR bad command line termination\r\n";
const BAD_FORMAT: &[u8] = b"CLIENT_ERROR bad authentication token format\r\n";
const FAILURE: &[u8] = b"CLIENT_ERROR authentication failure\r\n";
const STORED: &[u8] = b"STORED\r\n";

/// One `user:password` entry.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Entry {
    user: Vec<u8>,
    password: Vec<u8>,
}

/// The credentials of `-Y`, shared by every worker.
#[derive(Debug)]
pub struct AsciiAuth {
    path: PathBuf,
    entries: RwLock<Arc<Vec<Entry>>>,
}

impl AsciiAuth {
    /// Reads `path` at startup; the error is the line memcached prints.
    pub fn load(path: &Path) -> Result<AsciiAuth, String> {
        let entries = read(path)?;
        Ok(AsciiAuth {
            path: path.to_path_buf(),
            entries: RwLock::new(Arc::new(entries)),
        })
    }

    /// The file's path (`stats settings` shows it as `auth_enabled_ascii`).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reads the file again (SIGHUP); on an error the old entries stay.
    pub fn reload(&self) -> Result<(), String> {
        let entries = read(&self.path)?;
        *self.entries.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(entries);
        Ok(())
    }

    /// Whether `user` and `password` match an entry.
    pub fn check(&self, user: &[u8], password: &[u8]) -> bool {
        let entries = Arc::clone(&self.entries.read().unwrap_or_else(|e| e.into_inner()));
        // Every entry is compared, so the time taken does not say which one matched.
        entries.iter().fold(false, |found, e| {
            let same = e.user.ct_eq(user) & e.password.ct_eq(password);
            found | bool::from(same)
        })
    }
}

fn read(path: &Path) -> Result<Vec<Entry>, String> {
    let bytes = std::fs::read(path).map_err(|e| {
        format!(
            "Could not open authfile [{}] for reading, error {e}",
            path.display()
        )
    })?;
    parse(&bytes).ok_or_else(|| {
        format!(
            "Authfile [{}] has a malformed entry. Should be 'user:password'",
            path.display()
        )
    })
}

/// The entries of a credentials file, read as memcached 1.6.18 reads it (see the module
/// header); `None` if it is malformed.
fn parse(file: &[u8]) -> Option<Vec<Entry>> {
    // memcached's buffer: the file's size plus two zeroed bytes; `fgets` may write up
    // to the file's size.
    let mut buf = vec![0u8; file.len() + 2];
    let (mut cur, mut read_pos) = (0, 0);
    let mut entries = Vec::new();
    loop {
        let room = (file.len() - cur).min(ENTRY_MAX_BYTES);
        if !fgets(&mut buf[cur..], room, file, &mut read_pos) {
            break;
        }
        let at = |x: usize| buf.get(cur + x).copied().unwrap_or(0);
        let colon = (0..ENTRY_MAX_BYTES)
            .take_while(|&x| at(x) != 0)
            .find(|&x| at(x) == b':')?;
        let end = (colon + 1..ENTRY_MAX_BYTES)
            .find(|&x| matches!(at(x), b'\n' | b'\r' | 0))
            .unwrap_or(ENTRY_MAX_BYTES);
        entries.push(Entry {
            user: buf[cur..cur + colon].to_vec(),
            password: buf[cur + colon + 1..cur + end].to_vec(),
        });
        if entries.len() == ENTRIES_MAX || at(end) == 0 {
            break;
        }
        // The next line is read over this one's terminator.
        cur += end;
    }
    Some(entries)
}

/// C's `fgets(dst, room, file)`: reads at most `room - 1` bytes of `file` from `pos`,
/// stopping after a newline, and ends them with a NUL; false (nothing read) at the end
/// of the file or with no room.
fn fgets(dst: &mut [u8], room: usize, file: &[u8], pos: &mut usize) -> bool {
    if room == 0 {
        return false;
    }
    if room == 1 {
        dst[0] = 0;
        return true;
    }
    if *pos >= file.len() {
        return false;
    }
    let rest = &file[*pos..];
    let mut n = rest.len().min(room - 1);
    if let Some(newline) = memchr::memchr(b'\n', &rest[..n]) {
        n = newline + 1;
    }
    dst[..n].copy_from_slice(&rest[..n]);
    dst[n] = 0;
    *pos += n;
    true
}

/// Where an unauthenticated connection is: reading a command line, or waiting for the
/// data block of an authentication `set` (its length with the `\r\n`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum AuthState {
    #[default]
    Line,
    Block(usize),
}

/// What one [`step`] did.
#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    /// Nothing whole yet: wait for more input.
    Incomplete,
    /// `consumed` bytes were used and `reply` is the answer (empty: none yet).
    Answered {
        consumed: usize,
        reply: &'static [u8],
        /// The connection is now authenticated.
        authenticated: bool,
        /// This was an authentication attempt (`auth_cmds`); failed unless
        /// `authenticated` (`auth_errors`).
        attempt: bool,
    },
    /// Close the connection (a line too long, a block too large).
    Close,
}

fn answered(consumed: usize, reply: &'static [u8]) -> Step {
    Step::Answered {
        consumed,
        reply,
        authenticated: false,
        attempt: false,
    }
}

/// Consumes the front of an unauthenticated connection's `input` as memcached does.
pub fn step(auth: &AsciiAuth, state: &mut AuthState, input: &[u8]) -> Step {
    match *state {
        AuthState::Line => line(state, input),
        AuthState::Block(len) => block(auth, state, len, input),
    }
}

/// A command line: an authentication `set` announces its block; anything else is
/// unauthenticated.
fn line(state: &mut AuthState, input: &[u8]) -> Step {
    let Some(newline) = memchr::memchr(b'\n', input) else {
        return if input.len() > LINE_MAX_BYTES {
            Step::Close
        } else {
            Step::Incomplete
        };
    };
    let mut text = &input[..newline];
    // memcached's tokenizer stops at a NUL; `\r` ends the number as a space would.
    if let Some(nul) = memchr::memchr(0, text) {
        text = &text[..nul];
    }
    let text = text.strip_suffix(b"\r").unwrap_or(text);
    let mut tokens = text.split(|&b| b == b' ').filter(|t| !t.is_empty());
    let set = tokens.next() == Some(b"set".as_slice());
    let bytes = tokens.nth(3).and_then(crate::protocol::safe_strtoul);
    match bytes {
        Some(bytes) if set => {
            let len = bytes as usize + 2;
            if len > AUTH_BLOCK_MAX_BYTES {
                return Step::Close;
            }
            *state = AuthState::Block(len);
            answered(newline + 1, b"")
        }
        _ => answered(newline + 1, UNAUTHENTICATED),
    }
}

/// The data block of an authentication `set`: `user password` and `\r\n`.
fn block(auth: &AsciiAuth, state: &mut AuthState, len: usize, input: &[u8]) -> Step {
    let Some(block) = input.get(..len) else {
        return Step::Incomplete;
    };
    *state = AuthState::Line;
    let (data, end) = block.split_at(len - 2);
    if end != b"\r\n" {
        return answered(len, BAD_TERMINATION);
    }
    let data = memchr::memchr(0, data).map_or(data, |nul| &data[..nul]);
    let mut tokens = data.split(|&b| b == b' ').filter(|t| !t.is_empty());
    let (Some(user), Some(password)) = (tokens.next(), tokens.next()) else {
        return answered(len, BAD_FORMAT);
    };
    let ok = auth.check(user, password);
    Step::Answered {
        consumed: len,
        reply: if ok { STORED } else { FAILURE },
        authenticated: ok,
        attempt: true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn users(file: &[u8]) -> Option<Vec<(String, String)>> {
        parse(file).map(|entries| {
            entries
                .into_iter()
                .map(|e| {
                    let s = |b: Vec<u8>| String::from_utf8(b).unwrap();
                    (s(e.user), s(e.password))
                })
                .collect()
        })
    }

    fn pairs(list: &[(&str, &str)]) -> Option<Vec<(String, String)>> {
        Some(
            list.iter()
                .map(|(u, p)| (u.to_string(), p.to_string()))
                .collect(),
        )
    }

    /// Each case was read by Debian's memcached 1.6.18 (which entries authenticate,
    /// which files refuse to start).
    #[test]
    fn reads_the_file_as_memcached_1_6_18() {
        assert_eq!(
            users(b"alice:secret\nbob:pw2\n"),
            pairs(&[("alice", "secret"), ("bob", "pw2")])
        );
        assert_eq!(users(b"eve:last"), pairs(&[("eve", "las")]));
        assert_eq!(users(b"a:b\nc:d"), pairs(&[("a", "b"), ("c", "d")]));
        assert_eq!(users(b"a:b\r\nc:d\n"), pairs(&[("a", "b"), ("c", "d")]));
        assert_eq!(users(b"a:b:c\n"), pairs(&[("a", "b:c")]));
        assert_eq!(users(b"dave:\n"), pairs(&[("dave", "")]));
        assert_eq!(users(b":nopw\n"), pairs(&[("", "nopw")]));
        assert_eq!(users(b"  a:b\n"), pairs(&[("  a", "b")]));
        assert_eq!(users(b""), pairs(&[]));
        for malformed in [
            &b"a:b\r\n"[..],
            b"nocolon\n",
            b"alice:s\n\nbob:x\n",
            b"#c\na:b\n",
            b"a:b\rc\n",
        ] {
            assert_eq!(users(malformed), None, "{malformed:?}");
        }
        let ten: Vec<u8> = (0..10)
            .flat_map(|i| format!("u{i}:p{i}\n").into_bytes())
            .collect();
        let got = users(&ten).unwrap();
        assert_eq!(got.len(), 8);
        assert_eq!(got[7], ("u7".to_string(), "p7".to_string()));
        // A line past 255 bytes is cut there (memcached: 253 password bytes of 300).
        let long = [b"u:".as_slice(), &[b'p'; 300], b"\n"].concat();
        assert_eq!(users(&long), pairs(&[("u", &"p".repeat(253))]));
    }

    fn auth(file: &[u8]) -> AsciiAuth {
        AsciiAuth {
            path: PathBuf::from("test"),
            entries: RwLock::new(Arc::new(parse(file).unwrap())),
        }
    }

    #[test]
    fn checks_user_and_password_exactly() {
        let a = auth(b"alice:secret\nbob:pw2\n");
        assert!(a.check(b"alice", b"secret"));
        assert!(a.check(b"bob", b"pw2"));
        for (u, p) in [
            ("alice", "secre"),
            ("alice", "secrets"),
            ("bob", "secret"),
            ("", ""),
        ] {
            assert!(!a.check(u.as_bytes(), p.as_bytes()), "{u} {p}");
        }
    }

    /// Runs `input` through [`step`] to the end; returns the replies and whether the
    /// connection authenticated or closed.
    fn session(a: &AsciiAuth, mut input: &[u8]) -> (Vec<u8>, bool) {
        let mut state = AuthState::Line;
        let mut out = Vec::new();
        loop {
            match step(a, &mut state, input) {
                Step::Incomplete => return (out, false),
                Step::Close => {
                    out.extend_from_slice(b"<closed>");
                    return (out, false);
                }
                Step::Answered {
                    consumed,
                    reply,
                    authenticated,
                    ..
                } => {
                    out.extend_from_slice(reply);
                    input = &input[consumed..];
                    if authenticated {
                        return (out, true);
                    }
                }
            }
        }
    }

    #[test]
    fn answers_an_unauthenticated_connection() {
        let a = auth(b"alice:secret\n");
        let cases: &[(&[u8], &[u8], bool)] = &[
            (b"get a\r\nversion\r\n", b"CLIENT_ERROR unauthenticated\r\nCLIENT_ERROR unauthenticated\r\n", false),
            (b"set x 0 0 12\r\nalice secret\r\n", b"STORED\r\n", true),
            (b"  set x 5 100 12 noreply\nalice secret\r\n", b"STORED\r\n", true),
            (b"set x 0 0 10\r\nalice  secret\r\n", b"CLIENT_ERROR bad command line termination\r\nCLIENT_ERROR unauthenticated\r\n", false),
            (b"set x 0 0 14\r\n alice  secret\r\n", b"STORED\r\n", true),
            (b"set x 0 0 9\r\nalice bad\r\n", b"CLIENT_ERROR authentication failure\r\n", false),
            (b"set x 0 0 5\r\nalice\r\n", b"CLIENT_ERROR bad authentication token format\r\n", false),
            (b"set x 0 0\r\nSET x 0 0 1\r\nadd x 0 0 1\r\n", b"CLIENT_ERROR unauthenticated\r\nCLIENT_ERROR unauthenticated\r\nCLIENT_ERROR unauthenticated\r\n", false),
            (b"set x 0 0 -1\r\n", b"CLIENT_ERROR unauthenticated\r\n", false),
            (b"\x80\x0a\x00\x00", b"CLIENT_ERROR unauthenticated\r\n", false),
            (b"set x 0 0 20000\r\n", b"<closed>", false),
            (b"set x 0 0 100", b"", false),
        ];
        for &(input, want, authenticated) in cases {
            let (got, ok) = session(&a, input);
            assert_eq!(
                (String::from_utf8_lossy(&got), ok),
                (String::from_utf8_lossy(want), authenticated),
                "{input:?}"
            );
        }
        let long = vec![b'x'; LINE_MAX_BYTES + 1];
        assert_eq!(session(&a, &long).0, b"<closed>");
        assert_eq!(session(&a, &long[..LINE_MAX_BYTES]).0, b"");
    }

    #[test]
    fn any_split_answers_the_same() {
        let a = auth(b"alice:secret\n");
        let input = b"get a\r\nset x 0 0 9\r\nalice bad\r\nset x 0 0 12\r\nalice secret\r\n";
        let whole = session(&a, input);
        for cut in 1..input.len() {
            let mut state = AuthState::Line;
            let (mut out, mut pending) = (Vec::new(), Vec::new());
            for chunk in [&input[..cut], &input[cut..]] {
                pending.extend_from_slice(chunk);
                while let Step::Answered {
                    consumed, reply, ..
                } = step(&a, &mut state, &pending)
                {
                    out.extend_from_slice(reply);
                    pending.drain(..consumed);
                }
            }
            assert_eq!(out, whole.0, "cut at {cut}");
        }
    }
}
