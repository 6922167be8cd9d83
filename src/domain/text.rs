//! Rules against deceptive text in names that other people see: display names and
//! attachment file names.
//!
//! The attacks they stop: a right-to-left override makes `invoice\u{202E}fdp.exe` show as
//! `invoiceexe.pdf`; a name led by U+202E shows reversed; a name made only of zero-width
//! or filler characters shows as nothing, so a message seems to come from no one; NUL and
//! other control characters break logs, headers and terminals.
//!
//! Harmless direction *marks* (U+200E, U+200F, U+061C) are allowed: they only nudge
//! neutral characters and cannot reorder a whole run.

use icu_properties::props::GeneralCategory;
use icu_properties::CodePointMapData;

/// Why a name is refused. The messages are meant for the person who typed the name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TextError {
    #[error("{field} must not be empty")]
    Empty { field: &'static str },
    #[error("{field} must be at most {max} characters")]
    TooLong { field: &'static str, max: usize },
    #[error("{field} must not contain control characters")]
    ControlChar { field: &'static str },
    #[error("{field} must not contain bidirectional control characters")]
    BidiControl { field: &'static str },
    #[error("{field} must contain at least one visible character")]
    NoVisibleChar { field: &'static str },
}

/// The longest file name kept, in characters.
pub const MAX_FILE_NAME_CHARS: usize = 200;

/// The name given to a file whose name is empty once cleaned.
pub const FALLBACK_FILE_NAME: &str = "file";

/// True for the embedding, override and isolate controls (U+202A–U+202E, U+2066–U+2069),
/// which reorder everything up to the end of the paragraph or their terminator.
pub fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// True when `s` contains an embedding, override or isolate control.
pub fn has_bidi_control(s: &str) -> bool {
    s.chars().any(is_bidi_control)
}

/// True when `s` contains U+0000.
pub fn has_nul(s: &str) -> bool {
    s.contains('\0')
}

/// True for C0/C1 controls and the line and paragraph separators, none of which belong in
/// a one-line name.
fn is_control_like(c: char) -> bool {
    c.is_control() || matches!(c, '\u{2028}' | '\u{2029}')
}

/// True when `c` draws something on its own: not whitespace, not a control or format
/// character (zero-width space/joiners, word joiner, BOM, Mongolian vowel separator, tags…),
/// not a combining mark (which only decorates the character before it), not unassigned or
/// private use, and not one of the letters that render blank (Hangul fillers, Braille blank).
pub fn is_visible_char(c: char) -> bool {
    if c.is_whitespace()
        || matches!(
            c,
            '\u{115F}' | '\u{1160}' | '\u{3164}' | '\u{FFA0}' | '\u{2800}' | '\u{180E}'
        )
    {
        return false;
    }
    !matches!(
        CodePointMapData::<GeneralCategory>::new().get(c),
        GeneralCategory::Control
            | GeneralCategory::Format
            | GeneralCategory::NonspacingMark
            | GeneralCategory::EnclosingMark
            | GeneralCategory::SpacingMark
            | GeneralCategory::SpaceSeparator
            | GeneralCategory::LineSeparator
            | GeneralCategory::ParagraphSeparator
            | GeneralCategory::Unassigned
            | GeneralCategory::PrivateUse
            | GeneralCategory::Surrogate
    )
}

/// True when at least one character of `s` is visible (see [`is_visible_char`]).
pub fn has_visible_char(s: &str) -> bool {
    s.chars().any(is_visible_char)
}

/// Checks a display name (an agent's or a visitor's) and returns it trimmed: 1 to
/// `max_chars` characters, no control characters, no bidi controls, something visible.
pub fn check_display_name(raw: &str, max_chars: usize) -> Result<String, TextError> {
    check_line("name", raw, max_chars)
}

/// [`check_display_name`] with another field name in the messages (e.g. "team name").
pub fn check_line(field: &'static str, raw: &str, max_chars: usize) -> Result<String, TextError> {
    let name = raw.trim();
    if name.is_empty() {
        return Err(TextError::Empty { field });
    }
    if has_bidi_control(name) {
        return Err(TextError::BidiControl { field });
    }
    if name.chars().any(is_control_like) {
        return Err(TextError::ControlChar { field });
    }
    if name.chars().count() > max_chars {
        return Err(TextError::TooLong {
            field,
            max: max_chars,
        });
    }
    if !has_visible_char(name) {
        return Err(TextError::NoVisibleChar { field });
    }
    Ok(name.to_owned())
}

/// Cleans an uploaded file's name: keeps the last path component, drops control
/// characters, trims spaces and leading dots (no `..`, no hidden files) and keeps at most
/// [`MAX_FILE_NAME_CHARS`] characters, preserving a short extension when it has to cut.
/// A name that is empty once cleaned becomes [`FALLBACK_FILE_NAME`]. Bidi controls are an
/// error rather than silently dropped, since their only use in a file name is to disguise
/// its extension; so is a name with nothing visible in it.
pub fn check_file_name(raw: &str) -> Result<String, TextError> {
    const FIELD: &str = "file name";
    if has_bidi_control(raw) {
        return Err(TextError::BidiControl { field: FIELD });
    }
    let base = raw.rsplit(['/', '\\']).next().unwrap_or_default();
    let cleaned: String = base.chars().filter(|c| !is_control_like(*c)).collect();
    let name = cleaned.trim().trim_start_matches('.').trim_start();
    if name.is_empty() {
        return Ok(FALLBACK_FILE_NAME.to_owned());
    }
    if !has_visible_char(name) {
        return Err(TextError::NoVisibleChar { field: FIELD });
    }
    Ok(truncate_keeping_extension(name, MAX_FILE_NAME_CHARS))
}

/// The first characters of `name` up to `max` in all, with its extension (when it is
/// short and visible) kept at the end so the type stays readable.
fn truncate_keeping_extension(name: &str, max: usize) -> String {
    let count = name.chars().count();
    if count <= max {
        return name.to_owned();
    }
    let extension = name
        .rsplit_once('.')
        .map(|(_, ext)| ext)
        .filter(|ext| (1..=16).contains(&ext.chars().count()) && has_visible_char(ext));
    match extension {
        Some(ext) => {
            let keep = max - ext.chars().count() - 1;
            let stem: String = name.chars().take(keep).collect();
            format!("{}.{ext}", stem.trim_end())
        }
        None => name.chars().take(max).collect(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn bidi_controls_are_found() {
        for c in [
            '\u{202A}', '\u{202B}', '\u{202C}', '\u{202D}', '\u{202E}', '\u{2066}', '\u{2067}',
            '\u{2068}', '\u{2069}',
        ] {
            assert!(has_bidi_control(&format!("a{c}b")), "{:04X}", c as u32);
        }
        // Marks are allowed.
        assert!(!has_bidi_control("a\u{200E}b\u{200F}c\u{061C}d"));
        assert!(!has_bidi_control("Support Team"));
    }

    #[test]
    fn nul_is_found() {
        assert!(has_nul("a\0b"));
        assert!(!has_nul("ab"));
    }

    #[test]
    fn invisible_strings_have_no_visible_char() {
        for s in [
            "",
            "   ",
            "\u{200B}",
            "\u{200C}\u{200D}",
            "\u{2060}",
            "\u{FEFF}",
            "\u{180E}",
            "\u{3164}",
            "\u{115F}\u{1160}",
            "\u{FFA0}",
            "\u{2800}",
            "\u{00AD}",
            "\u{0301}\u{0302}\u{20DD}",
            "\u{FE0F}",
            "\u{E0041}",
            "\u{3000}\u{00A0}\u{2028}",
            "\u{E000}",
            "\t\n\u{7F}\u{85}",
        ] {
            assert!(!has_visible_char(s), "{s:?}");
        }
    }

    #[test]
    fn ordinary_text_is_visible() {
        for s in [
            "a",
            " x ",
            "Zoë",
            "李",
            "مرحبا",
            "שלום",
            "😀",
            "\u{200B}a",
            "e\u{301}",
            ".",
        ] {
            assert!(has_visible_char(s), "{s:?}");
        }
    }

    #[test]
    fn display_name_override_attack_is_refused() {
        assert_eq!(
            check_display_name("\u{202E}Support Team", 80),
            Err(TextError::BidiControl { field: "name" })
        );
        assert_eq!(
            check_display_name("Support\u{2067} Team", 80),
            Err(TextError::BidiControl { field: "name" })
        );
    }

    #[test]
    fn display_name_invisible_is_refused() {
        assert_eq!(
            check_display_name("\u{200B}", 80),
            Err(TextError::NoVisibleChar { field: "name" })
        );
        assert_eq!(
            check_display_name("\u{3164}\u{3164}", 80),
            Err(TextError::NoVisibleChar { field: "name" })
        );
        assert_eq!(
            check_display_name("\u{0301}", 80),
            Err(TextError::NoVisibleChar { field: "name" })
        );
    }

    #[test]
    fn display_name_controls_are_refused() {
        for raw in [
            "Ann\0",
            "A\0nn",
            "An\nn",
            "Ann\u{1B}[31m",
            "A\u{2028}B",
            "A\u{85}B",
        ] {
            assert_eq!(
                check_display_name(raw, 80),
                Err(TextError::ControlChar { field: "name" }),
                "{raw:?}"
            );
        }
    }

    #[test]
    fn display_name_length_and_trim() {
        assert_eq!(
            check_display_name("  ", 80),
            Err(TextError::Empty { field: "name" })
        );
        assert_eq!(
            check_display_name("", 80),
            Err(TextError::Empty { field: "name" })
        );
        assert_eq!(check_display_name("  Ann Lee \n", 80).unwrap(), "Ann Lee");
        assert_eq!(check_display_name("ééé", 3).unwrap(), "ééé");
        assert_eq!(
            check_display_name("éééé", 3),
            Err(TextError::TooLong {
                field: "name",
                max: 3
            })
        );
        // Marks are fine inside a real name.
        assert_eq!(
            check_display_name("\u{200F}שלום", 80).unwrap(),
            "\u{200F}שלום"
        );
    }

    #[test]
    fn messages_are_user_facing() {
        assert_eq!(
            TextError::BidiControl { field: "name" }.to_string(),
            "name must not contain bidirectional control characters"
        );
        assert_eq!(
            TextError::TooLong {
                field: "name",
                max: 80
            }
            .to_string(),
            "name must be at most 80 characters"
        );
        assert_eq!(
            TextError::NoVisibleChar { field: "file name" }.to_string(),
            "file name must contain at least one visible character"
        );
    }

    #[test]
    fn file_name_extension_spoof_is_refused() {
        assert_eq!(
            check_file_name("invoice\u{202E}fdp.exe"),
            Err(TextError::BidiControl { field: "file name" })
        );
        assert_eq!(
            check_file_name("report\u{2066}.pdf"),
            Err(TextError::BidiControl { field: "file name" })
        );
    }

    #[test]
    fn file_name_keeps_todays_cleaning() {
        assert_eq!(check_file_name("../../etc/passwd").unwrap(), "passwd");
        assert_eq!(check_file_name("C:\\x\\report.pdf").unwrap(), "report.pdf");
        assert_eq!(check_file_name("a\0b\nc.txt").unwrap(), "abc.txt");
        assert_eq!(check_file_name("...").unwrap(), "file");
        assert_eq!(check_file_name("").unwrap(), "file");
        assert_eq!(check_file_name("dir/").unwrap(), "file");
        assert_eq!(check_file_name(" .hidden ").unwrap(), "hidden");
        assert_eq!(check_file_name("\0").unwrap(), "file");
        assert_eq!(check_file_name(&"x".repeat(500)).unwrap().len(), 200);
        assert_eq!(check_file_name("résumé.pdf").unwrap(), "résumé.pdf");
    }

    #[test]
    fn file_name_invisible_is_refused() {
        assert_eq!(
            check_file_name("\u{200B}"),
            Err(TextError::NoVisibleChar { field: "file name" })
        );
        assert_eq!(
            check_file_name("docs/\u{3164}"),
            Err(TextError::NoVisibleChar { field: "file name" })
        );
    }

    #[test]
    fn long_file_name_keeps_its_extension() {
        let long = format!("{}.pdf", "a".repeat(300));
        let cleaned = check_file_name(&long).unwrap();
        assert_eq!(cleaned.chars().count(), 200);
        assert!(cleaned.ends_with(".pdf"));
        let multibyte = format!("{}.txt", "é".repeat(300));
        let cleaned = check_file_name(&multibyte).unwrap();
        assert_eq!(cleaned.chars().count(), 200);
        assert!(cleaned.ends_with("é.txt"));
        // An "extension" longer than 16 characters is not kept.
        let odd = format!("{}.{}", "a".repeat(190), "b".repeat(40));
        assert_eq!(
            check_file_name(&odd).unwrap(),
            odd.chars().take(200).collect::<String>()
        );
    }
}
