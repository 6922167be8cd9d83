//! The contract's objects as they go over the wire, and the closed sets of values they use.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::domain::context::VisitorContext;
use crate::domain::settings::Availability;

/// Agent roles.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Admin,
    Agent,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Agent => "agent",
        }
    }

    pub fn from_db(raw: &str) -> Self {
        if raw == "admin" {
            Role::Admin
        } else {
            Role::Agent
        }
    }
}

/// Who wrote a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Sender {
    Visitor,
    Agent,
    /// The server, recording a chat event (closed, reopened, assigned).
    System,
}

impl Sender {
    pub fn as_str(self) -> &'static str {
        match self {
            Sender::Visitor => "visitor",
            Sender::Agent => "agent",
            Sender::System => "system",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "visitor" => Some(Sender::Visitor),
            "agent" => Some(Sender::Agent),
            "system" => Some(Sender::System),
            _ => None,
        }
    }

    /// How a message by this sender moves the chat's unread counts: `(for the agents, for
    /// the visitor)`. A private note is no news to the visitor: it never counts there.
    pub fn unread_counts(self, private: bool) -> (i64, i64) {
        (
            i64::from(self == Sender::Visitor),
            i64::from(self == Sender::Agent && !private),
        )
    }
}

/// Whether a chat is waiting for answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ChatStatus {
    Open,
    Closed,
}

impl ChatStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ChatStatus::Open => "open",
            ChatStatus::Closed => "closed",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "open" => Some(ChatStatus::Open),
            "closed" => Some(ChatStatus::Closed),
            _ => None,
        }
    }
}

/// A customer. Agents see every visitor; a visitor sees only itself.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Visitor {
    #[schema(format = "uuid")]
    pub id: String,
    #[schema(required = true)]
    pub name: Option<String>,
    #[schema(required = true)]
    pub email: Option<String>,
    /// The page the visitor first wrote from, if it was an http(s) URL.
    #[schema(required = true)]
    pub page_url: Option<String>,
    #[schema(format = DateTime)]
    pub created_at: String,
    /// Where the visitor is now (page, referrer, language, time zone, browser): the latest
    /// its page sent. Shown to agents; `null` in a visitor's own chat objects.
    #[schema(required = true)]
    pub context: Option<VisitorContext>,
    /// The host site's id for this visitor, when the site vouched for it (identity
    /// verification); `null` for an anonymous visitor.
    #[schema(required = true)]
    pub external_id: Option<String>,
}

/// A member of the support staff.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Agent {
    #[schema(format = "uuid")]
    pub id: String,
    pub name: String,
    pub email: String,
    pub role: Role,
    /// A disabled agent cannot log in and its sessions have ended.
    pub disabled: bool,
    #[schema(format = DateTime)]
    pub created_at: String,
    /// `online` or `away`, as the agent set it; present only while also making requests.
    pub availability: Availability,
    /// Whether the agent gets email about chats nobody read (`PATCH /api/v1/agents/me`).
    pub email_notifications: bool,
}

/// Who wrote a message: the visitor or agent, with its display name.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Author {
    #[schema(format = "uuid")]
    pub id: String,
    #[schema(required = true)]
    pub name: Option<String>,
}

/// One message of a chat, or a system message recording a chat event.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Message {
    #[schema(format = "uuid")]
    pub id: String,
    /// The cursor: unique across the server, increasing in commit order.
    #[schema(minimum = 1)]
    pub seq: i64,
    #[schema(format = "uuid")]
    pub chat_id: String,
    pub sender: Sender,
    #[schema(required = true)]
    pub author: Option<Author>,
    /// Stored verbatim; never HTML.
    pub body: String,
    /// The sender's idempotency key, if it sent one.
    #[schema(required = true)]
    pub client_id: Option<String>,
    /// For system messages: `closed`, `reopened` or `assigned`.
    #[schema(required = true)]
    pub event: Option<String>,
    #[schema(required = true)]
    pub attachment: Option<Attachment>,
    /// A private note: written by an agent for the agents, never shown to the visitor.
    pub private: bool,
    #[schema(format = DateTime)]
    pub created_at: String,
}

/// A file sent in a chat.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Attachment {
    #[schema(format = "uuid")]
    pub id: String,
    pub name: String,
    /// In bytes.
    #[schema(minimum = 0)]
    pub size: i64,
    /// Detected from the bytes, never taken from the uploader.
    pub content_type: String,
    /// Where the bytes are downloaded, with the same bearer token.
    pub url: String,
}

impl Attachment {
    pub fn url_for(id: &str) -> String {
        format!("/api/v1/attachments/{id}")
    }
}

/// A conversation between one visitor and the agents.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Chat {
    #[schema(format = "uuid")]
    pub id: String,
    pub status: ChatStatus,
    pub visitor: Visitor,
    #[schema(required = true)]
    pub assignee: Option<Agent>,
    #[schema(format = DateTime)]
    pub created_at: String,
    /// The `seq` of the chat's latest message (0 for none). A visitor is shown its latest
    /// message that is not a private note, here and in `last_message(_at)`.
    #[schema(minimum = 0)]
    pub last_seq: i64,
    #[schema(required = true, format = DateTime)]
    pub last_message_at: Option<String>,
    #[schema(required = true)]
    pub last_message: Option<Message>,
    /// Visitor messages the agents have not read yet.
    #[schema(minimum = 0)]
    pub unread: i64,
    /// Agent messages the visitor has not read yet (an extension for the visitor's side;
    /// private notes are not counted).
    #[schema(minimum = 0)]
    pub unread_by_visitor: i64,
    /// The agents' labels, sorted; always empty for the chat's visitor.
    pub labels: Vec<String>,
    /// (ext) The calling agent is `@mentioned` in a private note here that it has not read
    /// yet. Always false for the chat's visitor.
    pub mentioned: bool,
    /// The visitor's rating of the chat, once it gave one (after the chat was closed).
    #[schema(required = true)]
    pub rating: Option<Rating>,
    /// Read markers; sent in poll answers as `read`, not as part of the chat.
    #[serde(skip)]
    pub read: ReadMarkers,
}

impl Chat {
    /// The chat as a message's commit leaves it (what `store::messages::insert` writes):
    /// that message last, and counted unread on the side it is news to.
    pub fn record_message(&mut self, message: &Message) {
        let (for_agents, for_visitor) = message.sender.unread_counts(message.private);
        self.last_seq = message.seq;
        self.last_message_at = Some(message.created_at.clone());
        self.unread += for_agents;
        self.unread_by_visitor += for_visitor;
        self.last_message = Some(message.clone());
    }
}

/// A visitor's rating of a closed chat.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, ToSchema)]
pub struct Rating {
    /// 1 (poor) to 5 (excellent).
    #[schema(minimum = 1, maximum = 5)]
    pub rating: i64,
    #[schema(required = true)]
    pub comment: Option<String>,
}

/// Read markers of both sides of a chat.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq, Default, ToSchema)]
pub struct ReadMarkers {
    pub visitor: i64,
    pub agent: i64,
}

/// Who is typing in a chat right now.
#[derive(Debug, Clone, Copy, Serialize, Default, PartialEq, Eq, ToSchema)]
pub struct Typing {
    pub visitor: bool,
    pub agent: bool,
}
