//! The team's settings that admins change at run time: business hours, the away message, the
//! greeting, their versions per language and the pre-chat form; and an agent's availability.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::domain::hours::BusinessHours;
use crate::domain::DomainError;

/// Longest away message or greeting, in characters.
pub const MAX_TEXT_CHARS: usize = 500;

/// Most languages the admins may write texts for: 20 × 2 × 500 characters stays well within a
/// request body and a cached snapshot.
pub const MAX_TRANSLATIONS: usize = 20;

/// Whether an agent takes chats now. Present = `online` and a request within the presence
/// window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Availability {
    #[default]
    Online,
    Away,
}

impl Availability {
    pub fn as_str(self) -> &'static str {
        match self {
            Availability::Online => "online",
            Availability::Away => "away",
        }
    }

    pub fn from_db(raw: &str) -> Self {
        if raw == "away" {
            Availability::Away
        } else {
            Availability::Online
        }
    }
}

/// Whether the pre-chat form asks for a field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Ask {
    /// Not asked.
    Off,
    /// Asked, may be left empty (the default: the page has always offered both fields).
    #[default]
    Optional,
    /// Asked before the first message.
    Required,
}

/// What the visitor page asks before the first message. The email is always asked (and
/// required) while nobody is online, whatever `ask_email` says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Prechat {
    #[serde(default)]
    pub ask_name: Ask,
    #[serde(default)]
    pub ask_email: Ask,
}

/// The team's settings.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
pub struct TeamSettings {
    /// `null`: always open.
    #[schema(required = true)]
    pub business_hours: Option<BusinessHours>,
    /// Shown to visitors while nobody is online; 1–500 characters, `null` for the page's own.
    #[schema(required = true, max_length = 500)]
    pub away_message: Option<String>,
    /// Shown instead of the visitor page's welcome text; 1–500 characters, `null` for the
    /// page's own.
    #[serde(default)]
    #[schema(required = true, max_length = 500)]
    pub greeting: Option<String>,
    /// The texts in other languages, by primary language tag (`de`, `fr`, `ast`); a text left
    /// out there is the one above.
    #[serde(default)]
    pub translations: BTreeMap<String, Texts>,
    pub prechat: Prechat,
}

/// The admins' texts in one language.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Texts {
    /// 1–500 characters; `null` (or left out) for the default one.
    #[serde(default)]
    #[schema(required = true, max_length = 500)]
    pub away_message: Option<String>,
    /// 1–500 characters; `null` (or left out) for the default one.
    #[serde(default)]
    #[schema(required = true, max_length = 500)]
    pub greeting: Option<String>,
}

/// The texts a visitor sees: in the language chosen (`lang`), or the defaults (`lang: None`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChosenTexts {
    pub lang: Option<String>,
    pub away_message: Option<String>,
    pub greeting: Option<String>,
}

impl TeamSettings {
    /// The texts for a visitor who prefers `preferred` (language tags, best first): those of
    /// the first language the admins wrote texts for (`de-AT` finds `de`), each one they left
    /// out the default; else the defaults.
    pub fn texts_for<'a>(&self, preferred: impl IntoIterator<Item = &'a str>) -> ChosenTexts {
        let chosen = preferred
            .into_iter()
            .filter_map(primary_language)
            .find_map(|lang| self.translations.get_key_value(&lang));
        match chosen {
            Some((lang, texts)) => ChosenTexts {
                lang: Some(lang.clone()),
                away_message: texts.away_message.clone().or(self.away_message.clone()),
                greeting: texts.greeting.clone().or(self.greeting.clone()),
            },
            None => ChosenTexts {
                lang: None,
                away_message: self.away_message.clone(),
                greeting: self.greeting.clone(),
            },
        }
    }
}

/// Whether `tag` is a primary language subtag as the translations are keyed: 2–3 lowercase
/// ASCII letters (BCP 47; the 4–8 letter ones are reserved or unused).
pub fn is_language_key(tag: &str) -> bool {
    (2..=3).contains(&tag.len()) && tag.bytes().all(|b| b.is_ascii_lowercase())
}

/// The primary language of a BCP 47 tag, lowercased (`de-AT` → `de`); `None` for `*` or
/// anything else that is not one.
pub fn primary_language(tag: &str) -> Option<String> {
    let primary = tag.trim().split(['-', '_']).next()?.to_ascii_lowercase();
    is_language_key(&primary).then_some(primary)
}

/// An away message: trimmed, empty means none, at most 500 characters.
pub fn parse_away_message(raw: Option<String>) -> Result<Option<String>, DomainError> {
    parse_text("away_message", raw)
}

/// A greeting: as an away message.
pub fn parse_greeting(raw: Option<String>) -> Result<Option<String>, DomainError> {
    parse_text("greeting", raw)
}

/// A text the admins write for visitors (`field` names it in the error): trimmed, empty means
/// none, at most [`MAX_TEXT_CHARS`] characters, no control characters but newline and tab.
fn parse_text(field: &str, raw: Option<String>) -> Result<Option<String>, DomainError> {
    let Some(raw) = raw else { return Ok(None) };
    let text = raw.trim();
    if text.is_empty() {
        return Ok(None);
    }
    if text.chars().count() > MAX_TEXT_CHARS {
        return Err(DomainError::invalid(format!(
            "{field} must be at most {MAX_TEXT_CHARS} characters"
        )));
    }
    if text
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t')
    {
        return Err(DomainError::invalid(format!(
            "{field} must not hold control characters"
        )));
    }
    Ok(Some(text.to_string()))
}

/// The texts per language: keys as [`is_language_key`], at most [`MAX_TRANSLATIONS`], each
/// text as [`parse_text`]; a language left with no text is dropped.
pub fn parse_translations(
    raw: BTreeMap<String, Texts>,
) -> Result<BTreeMap<String, Texts>, DomainError> {
    if raw.len() > MAX_TRANSLATIONS {
        return Err(DomainError::invalid(format!(
            "translations may hold at most {MAX_TRANSLATIONS} languages"
        )));
    }
    let mut out = BTreeMap::new();
    for (lang, texts) in raw {
        if !is_language_key(&lang) {
            return Err(DomainError::invalid(
                "translations are keyed by a primary language tag: 2 or 3 lowercase letters, like \"de\"",
            ));
        }
        let texts = Texts {
            away_message: parse_text(
                &format!("translations.{lang}.away_message"),
                texts.away_message,
            )?,
            greeting: parse_text(&format!("translations.{lang}.greeting"), texts.greeting)?,
        };
        if texts != Texts::default() {
            out.insert(lang, texts);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn away_messages_are_trimmed_bounded_and_empty_means_none() {
        assert_eq!(parse_away_message(None).unwrap(), None);
        assert_eq!(parse_away_message(Some("  ".into())).unwrap(), None);
        assert_eq!(
            parse_away_message(Some(" back soon \n".into())).unwrap(),
            Some("back soon".into())
        );
        assert!(parse_away_message(Some("é".repeat(500))).is_ok());
        assert!(parse_away_message(Some("é".repeat(501))).is_err());
        assert!(parse_away_message(Some("a\u{0}b".into())).is_err());
        assert!(parse_greeting(Some("é".repeat(501))).is_err());
        assert_eq!(
            parse_greeting(Some("Hallo!\n".into())).unwrap(),
            Some("Hallo!".into())
        );
    }

    fn texts(away: Option<&str>, greeting: Option<&str>) -> Texts {
        Texts {
            away_message: away.map(Into::into),
            greeting: greeting.map(Into::into),
        }
    }

    #[test]
    fn translations_are_keyed_by_a_primary_language_and_bounded() {
        let one = |lang: &str| BTreeMap::from([(lang.to_string(), texts(Some("x"), None))]);
        for good in ["de", "pt", "ast"] {
            assert!(parse_translations(one(good)).is_ok(), "{good}");
        }
        for bad in ["", "d", "DE", "de-AT", "deut", "d3", "*", "é"] {
            assert!(parse_translations(one(bad)).is_err(), "{bad:?}");
        }
        let letters = |i: usize| {
            format!(
                "{}{}",
                (b'a' + (i / 26) as u8) as char,
                (b'a' + (i % 26) as u8) as char
            )
        };
        let many = |n: usize| -> BTreeMap<_, _> {
            (0..n)
                .map(|i| (letters(i), texts(None, Some("hi"))))
                .collect()
        };
        assert_eq!(
            parse_translations(many(MAX_TRANSLATIONS)).unwrap().len(),
            20
        );
        assert!(parse_translations(many(MAX_TRANSLATIONS + 1)).is_err());
    }

    #[test]
    fn translated_texts_are_checked_like_the_defaults_and_an_empty_language_is_dropped() {
        let map = BTreeMap::from([
            ("de".to_string(), texts(Some(" Weg. "), Some(""))),
            ("fr".to_string(), texts(Some("  "), None)),
        ]);
        assert_eq!(
            parse_translations(map).unwrap(),
            BTreeMap::from([("de".to_string(), texts(Some("Weg."), None))])
        );
        let long = BTreeMap::from([("de".to_string(), texts(None, Some(&"x".repeat(501))))]);
        let err = parse_translations(long).unwrap_err().to_string();
        assert!(err.contains("translations.de.greeting"), "{err}");
        let bell = BTreeMap::from([("de".to_string(), texts(Some("\u{7}"), None))]);
        assert!(parse_translations(bell).is_err());
    }

    #[test]
    fn primary_languages_come_from_any_tag_case_and_region() {
        assert_eq!(primary_language("de-AT").as_deref(), Some("de"));
        assert_eq!(primary_language("PT_br").as_deref(), Some("pt"));
        assert_eq!(primary_language(" fr ").as_deref(), Some("fr"));
        assert_eq!(primary_language("zh-Hant-TW").as_deref(), Some("zh"));
        for none in ["*", "", "-de", "x", "deutsch", "1a"] {
            assert_eq!(primary_language(none), None, "{none:?}");
        }
    }

    #[test]
    fn the_first_preferred_language_with_texts_wins_and_a_missing_text_is_the_default() {
        let settings = TeamSettings {
            away_message: Some("Away.".into()),
            greeting: Some("Hello!".into()),
            translations: BTreeMap::from([
                ("de".to_string(), texts(Some("Weg."), Some("Hallo!"))),
                ("fr".to_string(), texts(None, Some("Bonjour !"))),
            ]),
            ..TeamSettings::default()
        };
        let chosen = settings.texts_for(["ja", "fr-CA", "de"]);
        assert_eq!(
            chosen,
            ChosenTexts {
                lang: Some("fr".into()),
                away_message: Some("Away.".into()),
                greeting: Some("Bonjour !".into()),
            }
        );
        assert_eq!(
            settings.texts_for(["DE-de"]).greeting.as_deref(),
            Some("Hallo!")
        );
        let none = settings.texts_for(["ja", "*"]);
        assert_eq!(
            none,
            ChosenTexts {
                lang: None,
                away_message: Some("Away.".into()),
                greeting: Some("Hello!".into()),
            }
        );
        assert_eq!(settings.texts_for([]).lang, None);
    }
}
