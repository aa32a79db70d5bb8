//! SASL authentication (`-S`) for the binary protocol, as memcached 1.6.18 has it with
//! its own password file: the file named by `MEMCACHED_SASL_PWDB`, the PLAIN
//! mechanism, and the state of one connection's SASL exchange.
//!
//! Owns [`SaslPasswords`] (the file's bytes, read at startup and reread on SIGHUP by
//! `run`'s main thread) and [`SaslState`] (per connection: authenticated or not, and
//! where its exchange is). The packets are framed by `protocol::binary::sasl`; the
//! connection's hook (`connection/sasl.rs`) answers them and counts the stats.
//!
//! memcached's rules (its `sasl_defs.c` built with `ENABLE_SASL_PWDB`, and Cyrus SASL's
//! PLAIN as Debian's 1.6.18 runs it; `tests/sasl.rs` checks them against Debian's):
//! - the file is read in `fgets` pieces of at most 255 bytes (a longer line is several
//!   pieces); the first piece that starts with `user:` decides: the password must
//!   follow and end at `:`, `\n`, `\r`, a NUL or the end of the piece. A user plus
//!   password over 252 bytes never authenticates;
//! - the one mechanism is PLAIN (matched without case); its message must hold exactly
//!   two NULs (`authzid NUL authcid NUL password`), a non-empty authcid, and an authzid
//!   that is empty or the authcid itself;
//! - SASL_AUTH with PLAIN and no data answers "continue" (0x21) and the next SASL_STEP
//!   carries the message; a SASL_STEP with no exchange going fails;
//! - every SASL_LIST_MECHS, SASL_AUTH and SASL_STEP first forgets the connection's
//!   authentication; one that fails leaves it unauthenticated, and once an exchange
//!   has succeeded, no later SASL_AUTH or SASL_STEP on that connection succeeds
//!   (Cyrus's connection object is spent);
//! - failures and successes count in `auth_cmds`, failures also in `auth_errors`.
//!
//! Differs from memcached on purpose: memcached opens the file at every attempt;
//! ringcache reads it at startup (a missing or unreadable file refuses the start) and
//! on SIGHUP, so an authentication makes no syscall. Cyrus's realms (`user@host`) are
//! not there: a user is the file's name, byte for byte.
//!
//! Passwords are compared in constant time (`subtle`); which user names exist, and
//! lengths, are not secret, as in memcached.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use subtle::ConstantTimeEq;

/// The environment variable naming the password file, as memcached's.
pub const PWDB_ENV: &str = "MEMCACHED_SASL_PWDB";
/// The one mechanism, as SASL_LIST_MECHS names it.
pub const MECHANISMS: &[u8] = b"PLAIN";
/// memcached's `MAX_ENTRY_LEN`: the file is read in pieces of at most this minus one.
const ENTRY_MAX_BYTES: usize = 256;

/// The password file of `-S`, shared by every worker.
#[derive(Debug)]
pub struct SaslPasswords {
    path: PathBuf,
    file: RwLock<Arc<Vec<u8>>>,
}

impl SaslPasswords {
    /// Reads `path` at startup; the error names the file and the variable.
    pub fn load(path: &Path) -> Result<SaslPasswords, String> {
        Ok(SaslPasswords {
            file: RwLock::new(Arc::new(read(path)?)),
            path: path.to_path_buf(),
        })
    }

    /// A file's contents without a file (unit tests).
    #[cfg(test)]
    pub fn from_bytes(bytes: &[u8]) -> SaslPasswords {
        SaslPasswords {
            path: PathBuf::from("test"),
            file: RwLock::new(Arc::new(bytes.to_vec())),
        }
    }

    /// Reads the file again (SIGHUP); on an error the old contents stay.
    pub fn reload(&self) -> Result<(), String> {
        let bytes = read(&self.path)?;
        *self.file.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(bytes);
        Ok(())
    }

    /// Whether `user` and `password` authenticate, by memcached's reading of the file.
    pub fn check(&self, user: &[u8], password: &[u8]) -> bool {
        if user.len() + password.len() > ENTRY_MAX_BYTES - 4 {
            return false;
        }
        let file = Arc::clone(&self.file.read().unwrap_or_else(|e| e.into_inner()));
        let Some(rest) = pieces(&file).find_map(|piece| {
            piece
                .strip_prefix(user)
                .and_then(|after| after.strip_prefix(b":"))
        }) else {
            return false;
        };
        let Some(stored) = rest.get(..password.len()) else {
            return false;
        };
        let ends = matches!(
            rest.get(password.len()),
            None | Some(b':' | b'\n' | b'\r' | 0)
        );
        bool::from(stored.ct_eq(password)) & ends
    }
}

fn read(path: &Path) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| {
        format!(
            "-S: cannot read the SASL password file {} ({}): {e}",
            path.display(),
            PWDB_ENV
        )
    })
}

/// The pieces C's `fgets` with a 256-byte buffer reads from `file`: up to 255 bytes,
/// ending after a newline.
fn pieces(file: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = file;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let mut n = rest.len().min(ENTRY_MAX_BYTES - 1);
        if let Some(newline) = memchr::memchr(b'\n', &rest[..n]) {
            n = newline + 1;
        }
        let (piece, after) = rest.split_at(n);
        rest = after;
        Some(piece)
    })
}

/// Where a connection's SASL exchange is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum Exchange {
    /// None going: SASL_STEP fails.
    #[default]
    Idle,
    /// PLAIN started without data: SASL_STEP carries the message.
    Started,
    /// An exchange succeeded: every later SASL_AUTH or SASL_STEP fails.
    Spent,
}

/// What a SASL_AUTH or SASL_STEP came to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Answer "Authenticated"; counted in `auth_cmds`.
    Authenticated,
    /// Answer 0x21 with no data; not counted.
    Continue,
    /// Answer 0x20 `Auth failure.`; counted in `auth_cmds` and `auth_errors`.
    Failed,
}

/// One connection's SASL state.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SaslState {
    authenticated: bool,
    exchange: Exchange,
}

impl SaslState {
    /// Whether commands other than the SASL ones and VERSION may run.
    #[inline]
    pub fn authenticated(&self) -> bool {
        self.authenticated
    }

    /// SASL_LIST_MECHS: forgets the authentication (memcached resets it there too).
    pub fn list_mechs(&mut self) {
        self.authenticated = false;
    }

    /// SASL_AUTH (`step` false) or SASL_STEP with mechanism `mech` and `data`.
    pub fn auth(
        &mut self,
        passwords: &SaslPasswords,
        step: bool,
        mech: &[u8],
        data: &[u8],
    ) -> Outcome {
        self.authenticated = false;
        let outcome = match (self.exchange, step) {
            (Exchange::Spent, _) | (Exchange::Idle, true) => return Outcome::Failed,
            (_, false) if !mech.eq_ignore_ascii_case(MECHANISMS) => Outcome::Failed,
            (_, false) if data.is_empty() => Outcome::Continue,
            _ if plain_ok(passwords, data) => Outcome::Authenticated,
            _ => Outcome::Failed,
        };
        self.exchange = match outcome {
            Outcome::Authenticated => Exchange::Spent,
            Outcome::Continue => Exchange::Started,
            // A failed step leaves the exchange open for another; a failed start ends it.
            Outcome::Failed if step => Exchange::Started,
            Outcome::Failed => Exchange::Idle,
        };
        self.authenticated = outcome == Outcome::Authenticated;
        outcome
    }
}

/// Whether a PLAIN message names a user of the file with its password.
fn plain_ok(passwords: &SaslPasswords, data: &[u8]) -> bool {
    let Some(plain) = crate::protocol::binary::sasl::plain(data) else {
        return false;
    };
    let acting_as_self = plain.authzid.is_empty() || plain.authzid == plain.authcid;
    !plain.authcid.is_empty() && acting_as_self && passwords.check(plain.authcid, plain.password)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_file_as_memcached_pwdb() {
        let p = SaslPasswords::from_bytes(b"alice:secret\nbob:pw:extra\r\ncarol:\nalice:second\n");
        assert!(p.check(b"alice", b"secret"));
        // The first line of a user decides.
        assert!(!p.check(b"alice", b"second"));
        assert!(p.check(b"bob", b"pw"));
        // memcached's check takes the password up to any `:`, and the whole line too.
        assert!(p.check(b"bob", b"pw:extra"));
        assert!(!p.check(b"bob", b"pw:ext"));
        assert!(p.check(b"carol", b""));
        for (u, w) in [
            ("alice", "secre"),
            ("alice", "secrets"),
            ("ali", "secret"),
            ("dave", "x"),
            ("", ""),
        ] {
            assert!(!p.check(u.as_bytes(), w.as_bytes()), "{u} {w}");
        }
        // No newline at the end: the piece ends the password.
        assert!(SaslPasswords::from_bytes(b"eve:last").check(b"eve", b"last"));
        // A line past 255 bytes is cut there; what follows is a piece of its own.
        let long = [b"u:".as_slice(), &[b'p'; 300], b"\nv:w\n"].concat();
        let p = SaslPasswords::from_bytes(&long);
        assert!(!p.check(b"u", &[b'p'; 250]));
        assert!(p.check(b"v", b"w"));
        let p = SaslPasswords::from_bytes(&[b"u:".as_slice(), &[b'p'; 250], b"\n"].concat());
        assert!(p.check(b"u", &[b'p'; 250]));
        // memcached's limit on user plus password.
        let p = SaslPasswords::from_bytes(&[b"u:".as_slice(), &[b'p'; 252], b"\n"].concat());
        assert!(!p.check(b"u", &[b'p'; 252]));
    }

    /// SASL_STEP or not, mechanism, data.
    type Attempt<'a> = (bool, &'a str, &'a [u8]);

    fn run(state: &mut SaslState, p: &SaslPasswords, steps: &[Attempt<'_>]) -> Vec<Outcome> {
        steps
            .iter()
            .map(|&(step, mech, data)| state.auth(p, step, mech.as_bytes(), data))
            .collect()
    }

    /// Each sequence was answered so by Debian's memcached 1.6.18 (Cyrus SASL, sasldb).
    #[test]
    fn follows_cyrus_plain_as_memcached_runs_it() {
        use Outcome::*;
        let p = SaslPasswords::from_bytes(b"alice:secret\n");
        let good: &[u8] = b"\0alice\0secret";
        let bad: &[u8] = b"\0alice\0bad";
        let cases: &[(&[Attempt<'_>], &[Outcome], bool)] = &[
            (&[(false, "PLAIN", good)], &[Authenticated], true),
            (&[(false, "plain", good)], &[Authenticated], true),
            (
                &[(false, "PLAIN", b"alice\0alice\0secret")],
                &[Authenticated],
                true,
            ),
            (&[(false, "PLAIN", b"bob\0alice\0secret")], &[Failed], false),
            (&[(false, "PLAIN", b"\0alice\0secret\0")], &[Failed], false),
            (&[(false, "PLAIN", b"\0alicesecret")], &[Failed], false),
            (&[(false, "PLAIN", b"\0\0secret")], &[Failed], false),
            (&[(false, "FOO", good)], &[Failed], false),
            (
                &[(false, "PLAIN", bad), (false, "PLAIN", good)],
                &[Failed, Authenticated],
                true,
            ),
            (
                &[(false, "PLAIN", bad), (true, "PLAIN", good)],
                &[Failed, Failed],
                false,
            ),
            (&[(true, "PLAIN", good)], &[Failed], false),
            (
                &[(false, "PLAIN", b""), (true, "X", good)],
                &[Continue, Authenticated],
                true,
            ),
            (
                &[
                    (false, "PLAIN", b""),
                    (true, "PLAIN", bad),
                    (true, "PLAIN", good),
                ],
                &[Continue, Failed, Authenticated],
                true,
            ),
            (
                &[
                    (false, "PLAIN", b""),
                    (true, "PLAIN", b""),
                    (false, "PLAIN", good),
                ],
                &[Continue, Failed, Authenticated],
                true,
            ),
            (
                &[(false, "PLAIN", b""), (false, "PLAIN", b"")],
                &[Continue, Continue],
                false,
            ),
            (
                &[(false, "FOO", b""), (true, "PLAIN", good)],
                &[Failed, Failed],
                false,
            ),
            (
                &[(false, "PLAIN", good), (false, "PLAIN", good)],
                &[Authenticated, Failed],
                false,
            ),
            (
                &[(false, "PLAIN", good), (true, "PLAIN", good)],
                &[Authenticated, Failed],
                false,
            ),
        ];
        for &(steps, want, authenticated) in cases {
            let mut state = SaslState::default();
            assert_eq!(run(&mut state, &p, steps), want, "{steps:?}");
            assert_eq!(state.authenticated(), authenticated, "{steps:?}");
        }
        let mut state = SaslState::default();
        run(&mut state, &p, &[(false, "PLAIN", good)]);
        state.list_mechs();
        assert!(!state.authenticated());
    }
}
