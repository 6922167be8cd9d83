//! The words of each email, as plain text and as HTML. Every string from a user (names,
//! message bodies, file names) goes into the HTML through `html_escape` only; links are
//! built by the server and escaped as attribute values.

use html_escape::{encode_double_quoted_attribute, encode_text};

use crate::domain::{Message, Sender};

/// A mail's subject and its two bodies.
#[derive(Debug, Clone)]
pub struct Composed {
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// At most this many messages are quoted in a notification (the newest); the rest are
/// counted. A transcript quotes up to [`TRANSCRIPT_MESSAGES`].
pub const NOTIFY_MESSAGES: usize = 20;
pub const TRANSCRIPT_MESSAGES: usize = 1000;
/// Each quoted message is cut to this many characters.
const QUOTE_CHARS: usize = 4000;

/// `2026-01-02T03:04:05.678Z` as `2026-01-02 03:04 UTC`.
fn when(created_at: &str) -> String {
    match (created_at.get(..10), created_at.get(11..16)) {
        (Some(day), Some(time)) => format!("{day} {time} UTC"),
        _ => created_at.to_string(),
    }
}

fn who(message: &Message, visitor_label: &str) -> String {
    match message.sender {
        Sender::Visitor => visitor_label.to_string(),
        Sender::Agent => message
            .author
            .as_ref()
            .and_then(|a| a.name.clone())
            .unwrap_or_else(|| "Support".into()),
        Sender::System => "Parley".into(),
    }
}

fn body_of(message: &Message) -> String {
    let mut body: String = message.body.chars().take(QUOTE_CHARS).collect();
    if body.len() < message.body.len() {
        body.push('…');
    }
    if let Some(file) = &message.attachment {
        if !body.is_empty() {
            body.push('\n');
        }
        body.push_str(&format!("[file: {}]", file.name));
    }
    body
}

/// The quoted messages (the newest `max`), as text and as HTML.
fn quote(messages: &[Message], max: usize, visitor_label: &str) -> (String, String) {
    let skipped = messages.len().saturating_sub(max);
    let shown = &messages[skipped..];
    let mut text = String::new();
    let mut html = String::new();
    if skipped > 0 {
        text.push_str(&format!("({skipped} earlier messages not shown)\n\n"));
        html.push_str(&format!(
            "<p style=\"color:#666\">({skipped} earlier messages not shown)</p>\n"
        ));
    }
    for message in shown {
        let who = who(message, visitor_label);
        let at = when(&message.created_at);
        let body = body_of(message);
        text.push_str(&format!("{who} ({at}):\n"));
        for line in body.lines() {
            text.push_str("> ");
            text.push_str(line);
            text.push('\n');
        }
        text.push('\n');
        html.push_str(&format!(
            "<p style=\"margin:0 0 4px;color:#666\"><strong>{}</strong> ({})</p>\n\
             <div style=\"margin:0 0 16px;padding:8px 12px;border-left:3px solid #ccc;\
             white-space:pre-wrap\">{}</div>\n",
            encode_text(&who),
            encode_text(&at),
            encode_text(&body),
        ));
    }
    (text, html)
}

fn link_html(url: &str, label: &str) -> String {
    format!(
        "<p><a href=\"{}\">{}</a></p>\n",
        encode_double_quoted_attribute(url),
        encode_text(label)
    )
}

fn page(inner: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"></head>\n\
         <body style=\"font-family:sans-serif;line-height:1.4;color:#222\">\n{inner}</body></html>\n"
    )
}

/// A visitor's name, or how mail calls an anonymous one.
pub fn visitor_label(name: Option<&str>) -> String {
    name.map_or_else(|| "A visitor".to_string(), str::to_string)
}

/// To an agent: visitor messages nobody has read, with a link into the inbox.
pub fn agent_notification(visitor: &str, messages: &[Message], inbox_url: &str) -> Composed {
    let count = messages.len();
    let subject = if count == 1 {
        format!("New message from {visitor}")
    } else {
        format!("{count} new messages from {visitor}")
    };
    let (quoted_text, quoted_html) = quote(messages, NOTIFY_MESSAGES, visitor);
    let intro = format!("{visitor} wrote, and nobody has read it yet:");
    let footer = "You get this because your email notifications are on; \
                  turn them off in the inbox.";
    let text = format!("{intro}\n\n{quoted_text}Open the chat: {inbox_url}\n\n-- \n{footer}\n");
    let html = page(&format!(
        "<p>{}</p>\n{quoted_html}{}<p style=\"color:#666;font-size:small\">{}</p>\n",
        encode_text(&intro),
        link_html(inbox_url, "Open the chat"),
        encode_text(footer),
    ));
    Composed {
        subject,
        text,
        html,
    }
}

/// To an agent named in a colleague's private note, with a link to the chat.
pub fn mention(author: &str, visitor: &str, note: &Message, inbox_url: &str) -> Composed {
    let subject = format!("{author} mentioned you in the chat with {visitor}");
    let (quoted_text, quoted_html) = quote(std::slice::from_ref(note), 1, visitor);
    let intro = format!("{author} mentioned you in a private note:");
    let footer = "You get this because your email notifications are on; \
                  turn them off in the inbox.";
    let text = format!("{intro}\n\n{quoted_text}Open the chat: {inbox_url}\n\n-- \n{footer}\n");
    let html = page(&format!(
        "<p>{}</p>\n{quoted_html}{}<p style=\"color:#666;font-size:small\">{}</p>\n",
        encode_text(&intro),
        link_html(inbox_url, "Open the chat"),
        encode_text(footer),
    ));
    Composed {
        subject,
        text,
        html,
    }
}

/// To a visitor: the agents' replies it has not read, with the continuity link.
pub fn visitor_notification(
    messages: &[Message],
    continue_url: &str,
    unsubscribe_url: &str,
) -> Composed {
    let subject = if messages.len() == 1 {
        "You have a new reply".to_string()
    } else {
        format!("You have {} new replies", messages.len())
    };
    let (quoted_text, quoted_html) = quote(messages, NOTIFY_MESSAGES, "You");
    let intro = "We replied to your chat:";
    let footer = "Don't want these emails?";
    let text = format!(
        "{intro}\n\n{quoted_text}Continue the conversation: {continue_url}\n\
         (the link works for 7 days)\n\n-- \n{footer} Unsubscribe: {unsubscribe_url}\n"
    );
    let html = page(&format!(
        "<p>{}</p>\n{quoted_html}{}<p style=\"color:#666;font-size:small\">\
         The link works for 7 days.</p>\n<p style=\"color:#666;font-size:small\">{} \
         <a href=\"{}\">Unsubscribe</a></p>\n",
        encode_text(intro),
        link_html(continue_url, "Continue the conversation"),
        encode_text(footer),
        encode_double_quoted_attribute(unsubscribe_url),
    ));
    Composed {
        subject,
        text,
        html,
    }
}

/// To a visitor who asked for it: a closed chat's messages (never private notes).
pub fn transcript(messages: &[Message], chat_started: &str, unsubscribe_url: &str) -> Composed {
    let subject = format!("Transcript of your chat of {}", when(chat_started));
    let (quoted_text, quoted_html) = quote(messages, TRANSCRIPT_MESSAGES, "You");
    let intro = "Here is your conversation with us:";
    let footer = "Don't want emails from us?";
    let text = format!("{intro}\n\n{quoted_text}-- \n{footer} Unsubscribe: {unsubscribe_url}\n");
    let html = page(&format!(
        "<p>{}</p>\n{quoted_html}<p style=\"color:#666;font-size:small\">{} \
         <a href=\"{}\">Unsubscribe</a></p>\n",
        encode_text(intro),
        encode_text(footer),
        encode_double_quoted_attribute(unsubscribe_url),
    ));
    Composed {
        subject,
        text,
        html,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Author;

    fn message(sender: Sender, name: Option<&str>, body: &str) -> Message {
        Message {
            id: "m".into(),
            seq: 1,
            chat_id: "c".into(),
            sender,
            author: Some(Author {
                id: "a".into(),
                name: name.map(str::to_string),
            }),
            body: body.into(),
            client_id: None,
            event: None,
            attachment: None,
            private: false,
            created_at: "2026-01-02T03:04:05.678Z".into(),
        }
    }

    #[test]
    fn user_text_is_escaped_in_html_and_verbatim_in_text() {
        let evil = "<script>alert(1)</script> & \"quotes\"";
        let messages = [message(Sender::Visitor, None, evil)];
        let mail = agent_notification("<b>Eve</b>", &messages, "https://x.test/agent#chat=1");
        assert!(!mail.html.contains("<script>"), "{}", mail.html);
        assert!(!mail.html.contains("<b>Eve"), "{}", mail.html);
        assert!(mail
            .html
            .contains("&lt;script&gt;alert(1)&lt;/script&gt; &amp;"));
        assert!(mail.text.contains(evil));
        let agent = [message(Sender::Agent, Some("<i>Bob</i>"), evil)];
        let mail = visitor_notification(&agent, "https://x.test/?a=1&b=2", "https://x.test/u");
        assert!(!mail.html.contains("<script>") && !mail.html.contains("<i>Bob"));
        assert!(mail.html.contains("href=\"https://x.test/?a=1&amp;b=2\""));
    }

    #[test]
    fn only_the_newest_messages_are_quoted() {
        let many: Vec<Message> = (0..25)
            .map(|i| message(Sender::Visitor, None, &format!("message {i}")))
            .collect();
        let mail = agent_notification("Ann", &many, "https://x.test/agent");
        assert!(mail.text.contains("(5 earlier messages not shown)"));
        assert!(!mail.text.contains("message 4\n") && mail.text.contains("message 24"));
        assert_eq!(mail.subject, "25 new messages from Ann");
    }
}
