//! Full-text search as the agents type it: the query read into terms (never handed to a
//! search engine as syntax), and the snippet that shows where a message matched.
//!
//! A query is words separated by white space. Each word must match (AND), case- and
//! accent-insensitively; `word*` matches every word that starts so; `"two words"` matches
//! the words next to each other. Everything else (`AND`, `OR`, `(`, `-`, `:`…) is text: a
//! piece without a letter or digit is dropped. The store turns the terms into each engine's
//! own syntax with every term quoted (`store::search`).

use serde::Serialize;
use unicode_normalization::char::is_combining_mark;
use unicode_normalization::UnicodeNormalization;
use utoipa::ToSchema;

use crate::domain::{DomainError, Message};

/// Longest query, in characters.
pub const MAX_QUERY_CHARS: usize = 200;
/// Most terms in one query.
pub const MAX_TERMS: usize = 16;
/// Longest word in a query, in characters (no real word is longer; the engines have limits).
pub const MAX_WORD_CHARS: usize = 64;

/// One thing a message must contain: a word, a word's start, or words in a row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Term {
    /// The text as typed (a phrase without its quotes, a prefix without its `*`), control
    /// characters made spaces. Each engine splits it into words with its own tokenizer.
    pub text: String,
    /// The words of `text`, folded (see [`fold`]): what the snippet marks.
    pub words: Vec<String>,
    /// The last word matches any word that starts with it.
    pub prefix: bool,
}

/// A parsed search query: at least one term, all of which must match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchQuery {
    terms: Vec<Term>,
}

impl SearchQuery {
    /// Reads what the agent typed. `Invalid` when it is too long or holds no word.
    pub fn parse(raw: &str) -> Result<Self, DomainError> {
        if raw.chars().count() > MAX_QUERY_CHARS {
            return Err(DomainError::invalid(format!(
                "q must be at most {MAX_QUERY_CHARS} characters"
            )));
        }
        // NUL cannot even be sent to PostgreSQL; no control character means anything here.
        let cleaned: String = raw
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        let mut terms = Vec::new();
        let mut rest = cleaned.as_str();
        loop {
            rest = rest.trim_start();
            let Some(first) = rest.chars().next() else {
                break;
            };
            let text;
            if first == '"' {
                let inner = &rest[1..];
                let end = inner.find('"').unwrap_or(inner.len());
                text = &inner[..end];
                rest = inner.get(end + 1..).unwrap_or("");
            } else {
                let end = rest
                    .find(|c: char| c.is_whitespace() || c == '"')
                    .unwrap_or(rest.len());
                text = &rest[..end];
                rest = &rest[end..];
            }
            // `word*`, and `"a phrase"*` for a phrase whose last word is a prefix.
            let stars = rest.len() - rest.trim_start_matches('*').len();
            rest = &rest[stars..];
            let trimmed = text.trim_end_matches('*');
            let prefix = stars > 0 || trimmed.len() < text.len();
            let words: Vec<String> = split_words(trimmed).map(|(_, w)| fold(w)).collect();
            if words.is_empty() {
                continue;
            }
            if let Some(long) =
                split_words(trimmed).find(|(_, w)| w.chars().count() > MAX_WORD_CHARS)
            {
                let start: String = long.1.chars().take(12).collect();
                return Err(DomainError::invalid(format!(
                    "the word \"{start}…\" is longer than {MAX_WORD_CHARS} characters"
                )));
            }
            terms.push(Term {
                text: trimmed.trim().to_string(),
                words,
                prefix,
            });
        }
        if terms.is_empty() {
            return Err(DomainError::invalid("q must contain a word"));
        }
        if terms.len() > MAX_TERMS {
            return Err(DomainError::invalid(format!(
                "q must have at most {MAX_TERMS} words or phrases"
            )));
        }
        Ok(Self { terms })
    }

    pub fn terms(&self) -> &[Term] {
        &self.terms
    }

    /// The whole query as one phrase, when it has several terms and no prefix: a message
    /// that holds it word for word ranks above one with the same words apart.
    pub fn exact_phrase(&self) -> Option<String> {
        if self.terms.len() < 2 || self.terms.iter().any(|t| t.prefix) {
            return None;
        }
        let texts: Vec<&str> = self.terms.iter().map(|t| t.text.as_str()).collect();
        Some(texts.join(" "))
    }
}

/// A message found by a search, with an excerpt of it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SearchResult {
    /// The chat the message belongs to (the same as `message.chat_id`).
    #[schema(format = "uuid")]
    pub chat_id: String,
    pub message: Message,
    /// A short excerpt of the body around the first match, as HTML: the matched words are
    /// wrapped in `<mark>`…`</mark>` and everything else is escaped (`&`, `<`, `>`, `"`,
    /// `'`), so it may be set as `innerHTML`. `…` stands for the text left out.
    pub snippet: String,
}

/// The words of `text` with their byte offsets: runs of letters and digits, as SQLite's
/// `unicode61` tokenizer and PostgreSQL's parser split plain text.
pub fn split_words(text: &str) -> impl Iterator<Item = (usize, &str)> {
    let mut rest = text.char_indices().peekable();
    std::iter::from_fn(move || {
        while let Some(&(_, c)) = rest.peek() {
            if c.is_alphanumeric() {
                break;
            }
            rest.next();
        }
        let (start, _) = *rest.peek()?;
        let mut end = start;
        while let Some(&(i, c)) = rest.peek() {
            if !c.is_alphanumeric() {
                break;
            }
            end = i + c.len_utf8();
            rest.next();
        }
        Some((start, &text[start..end]))
    })
}

/// A word as the engines compare it: lower case, without accents (`Déjà` → `deja`), and
/// compatibility forms made plain (`ﬁ` → `fi`).
pub fn fold(word: &str) -> String {
    let mut out = String::with_capacity(word.len());
    for c in word.nfkd().filter(|c| !is_combining_mark(*c)) {
        for lower in c.to_lowercase() {
            match lower {
                'ß' => out.push_str("ss"),
                'æ' => out.push_str("ae"),
                'œ' => out.push_str("oe"),
                'þ' => out.push_str("th"),
                'ø' => out.push('o'),
                'đ' | 'ð' => out.push('d'),
                'ł' => out.push('l'),
                'ı' => out.push('i'),
                other => out.push(other),
            }
        }
    }
    out
}

/// Words shown around the first match.
const SNIPPET_WORDS: usize = 24;
/// Words shown before the first match, when the body is longer than the snippet.
const SNIPPET_LEAD: usize = 6;

/// The excerpt of `body` around where `query` matched, as safe HTML (see
/// [`SearchResult::snippet`]). White space is collapsed to single spaces.
pub fn snippet(body: &str, query: &SearchQuery) -> String {
    let words: Vec<(usize, &str)> = split_words(body).collect();
    let folded: Vec<String> = words.iter().map(|(_, w)| fold(w)).collect();
    let mut marked = vec![false; words.len()];
    for term in query.terms() {
        let n = term.words.len();
        if n > folded.len() {
            continue;
        }
        for at in 0..=folded.len() - n {
            let fits = term.words.iter().enumerate().all(|(j, want)| {
                let have = &folded[at + j];
                if term.prefix && j == n - 1 {
                    have.starts_with(want.as_str())
                } else {
                    have == want
                }
            });
            if fits {
                marked[at..at + n].iter_mut().for_each(|m| *m = true);
            }
        }
    }
    let first = marked.iter().position(|m| *m).unwrap_or(0);
    let (from, to) = if words.len() <= SNIPPET_WORDS {
        (0, words.len())
    } else {
        let from = first
            .saturating_sub(SNIPPET_LEAD)
            .min(words.len() - SNIPPET_WORDS);
        (from, from + SNIPPET_WORDS)
    };
    let start = if from == 0 { 0 } else { words[from].0 };
    let end = if to == words.len() {
        body.len()
    } else {
        words[to - 1].0 + words[to - 1].1.len()
    };
    let mut out = String::with_capacity(end - start + 32);
    if start > 0 {
        out.push('…');
    }
    let mut at = start;
    for i in from..to {
        let (word_start, word) = words[i];
        push_escaped(&mut out, &body[at..word_start]);
        if marked[i] {
            out.push_str("<mark>");
            push_escaped(&mut out, word);
            out.push_str("</mark>");
        } else {
            push_escaped(&mut out, word);
        }
        at = word_start + word.len();
    }
    push_escaped(&mut out, &body[at..end]);
    let trimmed_len = out.trim_end().len();
    out.truncate(trimmed_len);
    if end < body.len() {
        out.push('…');
    }
    let leading = out.len() - out.trim_start().len();
    out.drain(..leading);
    out
}

/// Appends `text` HTML-escaped, with each run of white space as one space.
fn push_escaped(out: &mut String, text: &str) {
    let mut in_space = false;
    for c in text.chars() {
        if c.is_whitespace() {
            if !in_space {
                out.push(' ');
            }
            in_space = true;
            continue;
        }
        in_space = false;
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            other => out.push(other),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn terms(q: &str) -> Vec<(String, Vec<String>, bool)> {
        SearchQuery::parse(q)
            .unwrap()
            .terms()
            .iter()
            .map(|t| (t.text.clone(), t.words.clone(), t.prefix))
            .collect()
    }

    fn words(list: &[&str]) -> Vec<String> {
        list.iter().map(|w| w.to_string()).collect()
    }

    #[test]
    fn words_prefixes_and_phrases_are_read_apart() {
        assert_eq!(
            terms(r#"Refund deli* "two  Words" "next step"*"#),
            vec![
                ("Refund".into(), words(&["refund"]), false),
                ("deli".into(), words(&["deli"]), true),
                ("two  Words".into(), words(&["two", "words"]), false),
                ("next step".into(), words(&["next", "step"]), true),
            ]
        );
    }

    #[test]
    fn operators_and_punctuation_are_text_or_nothing() {
        assert_eq!(
            terms(r#"AND OR NOT ( * " "#),
            vec![
                ("AND".into(), words(&["and"]), false),
                ("OR".into(), words(&["or"]), false),
                ("NOT".into(), words(&["not"]), false),
            ]
        );
        assert_eq!(
            terms("e-mail: body:x"),
            vec![
                ("e-mail:".into(), words(&["e", "mail"]), false),
                ("body:x".into(), words(&["body", "x"]), false),
            ]
        );
    }

    #[test]
    fn a_query_without_a_word_or_too_long_is_refused() {
        for q in ["", "   ", "*", "\"\"", "( ) - : ^", "\"*\"*", "\0"] {
            assert!(SearchQuery::parse(q).is_err(), "{q:?}");
        }
        assert!(SearchQuery::parse(&"a ".repeat(100)).is_err());
        assert!(SearchQuery::parse(&"a".repeat(201)).is_err());
        assert!(SearchQuery::parse(&"a".repeat(65)).is_err());
        assert!(SearchQuery::parse(&"a ".repeat(16)).is_ok());
        assert!(SearchQuery::parse(&"a ".repeat(17)).is_err());
    }

    #[test]
    fn control_characters_separate_words() {
        assert_eq!(
            terms("one\0two"),
            vec![
                ("one".into(), words(&["one"]), false),
                ("two".into(), words(&["two"]), false)
            ]
        );
    }

    #[test]
    fn folding_drops_case_and_accents() {
        assert_eq!(fold("Déjà"), "deja");
        assert_eq!(fold("ÇA"), "ca");
        assert_eq!(fold("Straße"), "strasse");
        assert_eq!(fold("ﬁne"), "fine");
        assert_eq!(fold("Ærø"), "aero");
    }

    #[test]
    fn the_exact_phrase_is_the_terms_in_order() {
        let q = SearchQuery::parse("refund policy").unwrap();
        assert_eq!(q.exact_phrase().as_deref(), Some("refund policy"));
        assert_eq!(SearchQuery::parse("refund").unwrap().exact_phrase(), None);
        assert_eq!(
            SearchQuery::parse("refund pol*").unwrap().exact_phrase(),
            None
        );
    }

    #[test]
    fn the_snippet_marks_matches_and_escapes_the_rest() {
        let q = SearchQuery::parse("deja").unwrap();
        assert_eq!(
            snippet("<b>Déjà</b> vu & \"more\"", &q),
            "&lt;b&gt;<mark>Déjà</mark>&lt;/b&gt; vu &amp; &quot;more&quot;"
        );
        let q = SearchQuery::parse("<mark>").unwrap();
        assert_eq!(
            snippet("a <mark> tag", &q),
            "a &lt;<mark>mark</mark>&gt; tag"
        );
    }

    #[test]
    fn the_snippet_marks_prefixes_and_phrases_only_where_they_fit() {
        let q = SearchQuery::parse(r#"ship* "next step""#).unwrap();
        assert_eq!(
            snippet("Shipping: next\nstep, not step next", &q),
            "<mark>Shipping</mark>: <mark>next</mark> <mark>step</mark>, not step next"
        );
    }

    #[test]
    fn a_long_body_is_cut_around_the_first_match() {
        let body = format!("{} needle {}", "word ".repeat(50), "tail ".repeat(50));
        let q = SearchQuery::parse("needle").unwrap();
        let cut = snippet(&body, &q);
        assert!(cut.starts_with("…word"), "{cut}");
        assert!(cut.ends_with("tail…"), "{cut}");
        assert!(cut.contains("<mark>needle</mark>"));
        assert_eq!(split_words(&cut).count(), SNIPPET_WORDS + 2);
        let start = format!("needle {}", "tail ".repeat(50));
        assert!(snippet(&start, &q).starts_with("<mark>needle</mark> tail"));
    }
}
