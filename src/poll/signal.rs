//! What one instance tells the others about changes the database does not announce by
//! itself: typing, typing/read state versions, new messages and revoked tokens.
//!
//! On PostgreSQL each instance sends these through `NOTIFY` and hears the others' through
//! `LISTEN` (see `services::bus`). A signal is only a hint to wake pollers, who read the
//! database again; its text form fits PostgreSQL's 8,000-byte payload limit.

use std::fmt::Write as _;

/// Most token hashes in one [`Signal::Revoked`] (64 hex digits each).
pub const MAX_REVOKED_PER_SIGNAL: usize = 100;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Signal {
    /// A message with this `seq` was committed in the chat.
    Message { chat_id: String, seq: i64 },
    /// The chat's typing/read state is now `version` (a read marker moved, typing changed
    /// or was renewed); `typing` says how typing changed, if it did.
    State {
        chat_id: String,
        version: u64,
        typing: Option<TypingChange>,
    },
    /// These tokens no longer work: their cached sessions and held polls must end.
    Revoked { tokens: Vec<[u8; 32]> },
}

/// A change of a chat's typing state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TypingChange {
    /// One side typed (`true`, renewed on each keystroke report) or stopped.
    Side { agent_side: bool, typing: bool },
    /// Both sides' typing lapsed at the instance that last renewed it.
    Lapsed,
}

impl Signal {
    /// The text sent, after the sending instance's id: `m <seq> <chat>`, `s <version>
    /// <typing> <chat>` (typing: `-`, `a0`, `a1`, `v0`, `v1`, `x`), `r <hash> <hash>…`.
    pub fn encode(&self, origin: u64) -> String {
        let mut out = format!("{origin:x} ");
        match self {
            Signal::Message { chat_id, seq } => {
                let _ = write!(out, "m {seq} {chat_id}");
            }
            Signal::State {
                chat_id,
                version,
                typing,
            } => {
                let typing = match typing {
                    None => "-",
                    Some(TypingChange::Lapsed) => "x",
                    Some(TypingChange::Side { agent_side, typing }) => match (agent_side, typing) {
                        (true, true) => "a1",
                        (true, false) => "a0",
                        (false, true) => "v1",
                        (false, false) => "v0",
                    },
                };
                let _ = write!(out, "s {version} {typing} {chat_id}");
            }
            Signal::Revoked { tokens } => {
                out.push('r');
                for token in tokens {
                    out.push(' ');
                    out.push_str(&hex::encode(token));
                }
            }
        }
        out
    }

    /// The sender's id and its signal; `None` for text no Parley sent.
    pub fn decode(text: &str) -> Option<(u64, Signal)> {
        let (origin, rest) = text.split_once(' ')?;
        let origin = u64::from_str_radix(origin, 16).ok()?;
        let (kind, rest) = rest.split_once(' ').unwrap_or((rest, ""));
        let signal = match kind {
            "m" => {
                let (seq, chat_id) = rest.split_once(' ')?;
                Signal::Message {
                    seq: seq.parse().ok()?,
                    chat_id: chat_id.to_string(),
                }
            }
            "s" => {
                let mut parts = rest.splitn(3, ' ');
                let version = parts.next()?.parse().ok()?;
                let side = |agent_side, typing| Some(TypingChange::Side { agent_side, typing });
                let typing = match parts.next()? {
                    "-" => None,
                    "x" => Some(TypingChange::Lapsed),
                    "a1" => side(true, true),
                    "a0" => side(true, false),
                    "v1" => side(false, true),
                    "v0" => side(false, false),
                    _ => return None,
                };
                Signal::State {
                    chat_id: parts.next()?.to_string(),
                    version,
                    typing,
                }
            }
            "r" => Signal::Revoked {
                tokens: rest
                    .split(' ')
                    .filter(|t| !t.is_empty())
                    .map(|t| hex::decode(t).ok()?.try_into().ok())
                    .collect::<Option<_>>()?,
            },
            _ => return None,
        };
        Some((origin, signal))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_signal_reads_back_as_it_was_sent() {
        let signals = [
            Signal::Message {
                chat_id: "0190-chat with space".into(),
                seq: 42,
            },
            Signal::State {
                chat_id: "c".into(),
                version: u64::MAX,
                typing: Some(TypingChange::Side {
                    agent_side: false,
                    typing: true,
                }),
            },
            Signal::State {
                chat_id: "c".into(),
                version: 1,
                typing: Some(TypingChange::Lapsed),
            },
            Signal::State {
                chat_id: "c".into(),
                version: 7,
                typing: None,
            },
            Signal::Revoked {
                tokens: vec![[7; 32], [255; 32]],
            },
        ];
        for signal in signals {
            let text = signal.encode(0xabc);
            assert_eq!(Signal::decode(&text), Some((0xabc, signal)), "{text}");
        }
    }

    #[test]
    fn a_full_revocation_fits_a_notify_payload() {
        let tokens = vec![[9; 32]; MAX_REVOKED_PER_SIGNAL];
        assert!(Signal::Revoked { tokens }.encode(u64::MAX).len() < 8000);
    }

    #[test]
    fn foreign_text_is_ignored() {
        for text in ["", "hello", "zz m 1 c", "1 m x c", "1 q 1", "1 r nothex"] {
            assert_eq!(Signal::decode(text), None, "{text}");
        }
    }
}
