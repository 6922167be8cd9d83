//! The visitor's context: the page it is on, where it came from, its language and time zone
//! (all sent by the visitor's page) and its browser and OS (from the request's User-Agent).

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::domain::DomainError;

/// Longest URL kept, in bytes.
pub const MAX_URL_BYTES: usize = 2048;
/// Longest locale tag, in bytes.
pub const MAX_LOCALE_BYTES: usize = 35;
/// Longest time zone name, in bytes.
pub const MAX_TIMEZONE_BYTES: usize = 64;
/// Longest User-Agent kept, in characters.
pub const MAX_USER_AGENT_CHARS: usize = 512;

/// What agents see of where a visitor is: the latest that its page sent.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct VisitorContext {
    /// The page of the site the visitor is on (the host page when in the widget).
    #[schema(required = true)]
    pub page_url: Option<String>,
    /// The page that led there.
    #[schema(required = true)]
    pub referrer: Option<String>,
    /// The browser's language, a BCP 47 tag such as `de-DE`.
    #[schema(required = true)]
    pub locale: Option<String>,
    /// The browser's IANA time zone, such as `Europe/Berlin`.
    #[schema(required = true)]
    pub timezone: Option<String>,
    /// Browser name and version, from the User-Agent (e.g. `Firefox 128.0`).
    #[schema(required = true)]
    pub browser: Option<String>,
    /// Operating system, from the User-Agent (e.g. `Windows 10`).
    #[schema(required = true)]
    pub os: Option<String>,
    /// The User-Agent as sent (at most 512 characters).
    #[schema(required = true)]
    pub user_agent: Option<String>,
    #[schema(format = DateTime)]
    pub updated_at: String,
}

/// The part of the context a visitor's page sends; every field optional.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
pub struct ContextInput {
    /// An http(s) URL of at most 2048 bytes.
    #[schema(max_length = 2048)]
    pub page_url: Option<String>,
    /// An http(s) URL of at most 2048 bytes; an empty string counts as none.
    #[schema(max_length = 2048)]
    pub referrer: Option<String>,
    /// A BCP 47 language tag, at most 35 bytes.
    #[schema(max_length = 35)]
    pub locale: Option<String>,
    /// An IANA time zone name, at most 64 bytes.
    #[schema(max_length = 64)]
    pub timezone: Option<String>,
}

/// A validated [`ContextInput`].
#[derive(Debug, Clone, Default)]
pub struct ContextUpdate {
    page_url: Option<String>,
    referrer: Option<String>,
    locale: Option<String>,
    timezone: Option<String>,
}

/// A field given as an empty string counts as not given (`document.referrer` is often "").
fn given(raw: Option<String>) -> Option<String> {
    raw.map(|s| s.trim().to_string()).filter(|s| !s.is_empty())
}

fn web_url(field: &str, raw: Option<String>) -> Result<Option<String>, DomainError> {
    let Some(url) = given(raw) else {
        return Ok(None);
    };
    let lower = url.get(..8).unwrap_or(&url).to_ascii_lowercase();
    let is_web = lower.starts_with("http://") || lower.starts_with("https://");
    if !is_web || url.len() > MAX_URL_BYTES || url.chars().any(|c| c.is_control() || c == ' ') {
        return Err(DomainError::invalid(format!(
            "{field} must be an http(s) URL of at most {MAX_URL_BYTES} bytes"
        )));
    }
    Ok(Some(url))
}

/// BCP 47-ish: subtags of 1–8 letters or digits joined by `-`, the first one letters.
fn locale(raw: Option<String>) -> Result<Option<String>, DomainError> {
    let Some(tag) = given(raw) else {
        return Ok(None);
    };
    let mut subtags = tag.split('-');
    let first_ok = subtags
        .next()
        .is_some_and(|s| (2..=8).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphabetic()));
    let rest_ok =
        subtags.all(|s| (1..=8).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric()));
    if !first_ok || !rest_ok || tag.len() > MAX_LOCALE_BYTES {
        return Err(DomainError::invalid(format!(
            "locale must be a language tag such as de-DE, at most {MAX_LOCALE_BYTES} bytes"
        )));
    }
    Ok(Some(tag))
}

/// An IANA-style zone name: letters, digits, `/`, `_`, `+`, `-`. Not checked against a
/// database: a browser's may be newer than ours, and agents' browsers format with it.
fn timezone(raw: Option<String>) -> Result<Option<String>, DomainError> {
    let Some(zone) = given(raw) else {
        return Ok(None);
    };
    let ok = zone.len() <= MAX_TIMEZONE_BYTES
        && zone.bytes().next().is_some_and(|b| b.is_ascii_alphabetic())
        && zone
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/_+-".contains(&b));
    if !ok {
        return Err(DomainError::invalid(format!(
            "timezone must be an IANA time zone name such as Europe/Berlin, at most \
             {MAX_TIMEZONE_BYTES} bytes"
        )));
    }
    Ok(Some(zone))
}

impl ContextInput {
    pub fn validate(self) -> Result<ContextUpdate, DomainError> {
        Ok(ContextUpdate {
            page_url: web_url("page_url", self.page_url)?,
            referrer: web_url("referrer", self.referrer)?,
            locale: locale(self.locale)?,
            timezone: timezone(self.timezone)?,
        })
    }
}

impl ContextUpdate {
    /// The context after this update: the fields given replace the stored ones, the rest
    /// stay; the browser and OS are always the current request's.
    pub fn apply(
        self,
        old: Option<VisitorContext>,
        user_agent: Option<&str>,
        now: String,
    ) -> VisitorContext {
        let old = old.unwrap_or_default();
        let (browser, os, user_agent) = match user_agent {
            Some(ua) => parse_user_agent(ua),
            None => (old.browser, old.os, old.user_agent),
        };
        VisitorContext {
            page_url: self.page_url.or(old.page_url),
            referrer: self.referrer.or(old.referrer),
            locale: self.locale.or(old.locale),
            timezone: self.timezone.or(old.timezone),
            browser,
            os,
            user_agent,
            updated_at: now,
        }
    }
}

/// Browser and OS names from a User-Agent, and the User-Agent itself, bounded.
fn parse_user_agent(raw: &str) -> (Option<String>, Option<String>, Option<String>) {
    let ua: String = raw
        .trim()
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_USER_AGENT_CHARS)
        .collect();
    if ua.is_empty() {
        return (None, None, None);
    }
    let known = |s: &str| (!s.is_empty() && s != "UNKNOWN").then(|| s.to_string());
    let (browser, os) = match woothee::parser::Parser::new().parse(&ua) {
        Some(found) => {
            let browser = known(found.name).map(|name| match known(found.version) {
                Some(version) => format!("{name} {version}"),
                None => name,
            });
            // Windows names carry the version already ("Windows 10"; its os_version is "NT 10.0").
            let os = known(found.os).map(|os| match known(&found.os_version) {
                Some(version) if !os.starts_with("Windows") => format!("{os} {version}"),
                _ => os,
            });
            (browser, os)
        }
        None => (None, None),
    };
    (browser, os, Some(ua))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(page_url: &str, referrer: &str, locale: &str, timezone: &str) -> ContextInput {
        ContextInput {
            page_url: Some(page_url.into()),
            referrer: Some(referrer.into()),
            locale: Some(locale.into()),
            timezone: Some(timezone.into()),
        }
    }

    #[test]
    fn good_context_is_kept_and_empty_fields_count_as_none() {
        let update = input(
            "https://shop.example/cart?x=1",
            "",
            "de-DE",
            "Europe/Berlin",
        )
        .validate()
        .unwrap();
        let context = update.apply(None, None, "t".into());
        assert_eq!(
            context.page_url.as_deref(),
            Some("https://shop.example/cart?x=1")
        );
        assert_eq!(context.referrer, None);
        assert_eq!(context.locale.as_deref(), Some("de-DE"));
        assert_eq!(context.timezone.as_deref(), Some("Europe/Berlin"));
        for ok in ["en", "zh-Hant-TW", "es-419", "sr-Latn-RS"] {
            assert!(locale(Some(ok.into())).is_ok(), "{ok}");
        }
        for ok in ["UTC", "America/Argentina/Buenos_Aires", "Etc/GMT+5"] {
            assert!(timezone(Some(ok.into())).is_ok(), "{ok}");
        }
    }

    #[test]
    fn bad_context_is_refused() {
        let long_url = format!("https://a.example/{}", "x".repeat(2048));
        for bad in [
            input("javascript:alert(1)", "", "en", "UTC"),
            input("ftp://a.example/", "", "en", "UTC"),
            input(&long_url, "", "en", "UTC"),
            input("https://a.example/a b", "", "en", "UTC"),
            input("https://a.example/", "data:text/html,x", "en", "UTC"),
            input("https://a.example/", "", "e", "UTC"),
            input("https://a.example/", "", "en_US", "UTC"),
            input("https://a.example/", "", "en-<b>", "UTC"),
            input("https://a.example/", "", &"en-abc".repeat(7), "UTC"),
            input("https://a.example/", "", "en", "../etc/passwd"),
            input("https://a.example/", "", "en", &"A".repeat(65)),
            input("https://a.example/", "", "en", "Europe/ Berlin"),
        ] {
            assert!(bad.clone().validate().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn an_update_keeps_what_it_does_not_give_and_takes_the_browser_from_the_user_agent() {
        let first = input(
            "https://a.example/1",
            "https://search.example/",
            "en",
            "UTC",
        )
        .validate()
        .unwrap()
        .apply(None, None, "t1".into());
        let chrome = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 \
                      (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36";
        let update = ContextInput {
            page_url: Some("https://a.example/2".into()),
            ..ContextInput::default()
        };
        let second = update
            .validate()
            .unwrap()
            .apply(Some(first), Some(chrome), "t2".into());
        assert_eq!(second.page_url.as_deref(), Some("https://a.example/2"));
        assert_eq!(second.referrer.as_deref(), Some("https://search.example/"));
        assert_eq!(second.browser.as_deref(), Some("Chrome 120.0.0.0"));
        assert_eq!(second.os.as_deref(), Some("Windows 10"));
        assert_eq!(second.user_agent.as_deref(), Some(chrome));
        assert_eq!(second.updated_at, "t2");
    }

    #[test]
    fn an_odd_user_agent_is_kept_bounded_without_a_browser() {
        let (browser, os, ua) = parse_user_agent(&format!("curl\u{7}/{}", "1".repeat(600)));
        // woothee knows curl as a crawler-ish "HTTP Library curl"; it has no OS.
        assert_eq!(browser.as_deref(), Some("HTTP Library curl"));
        assert!(os.is_none(), "{os:?}");
        let ua = ua.unwrap();
        assert_eq!(ua.chars().count(), MAX_USER_AGENT_CHARS);
        assert!(!ua.contains('\u{7}'));
    }
}
