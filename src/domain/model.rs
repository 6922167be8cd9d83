//! The contract's objects as they go over the wire, and the closed sets of values they use.

use serde::{Deserialize, Serialize};

/// Agent roles.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
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
}

/// Whether a chat is waiting for answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
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

#[derive(Debug, Clone, Serialize)]
pub struct Visitor {
    pub id: String,
    pub name: Option<String>,
    pub email: Option<String>,
    pub page_url: Option<String>,
    pub created_at: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Agent {
    pub id: String,
    pub name: String,
    pub email: String,
    pub role: Role,
    pub disabled: bool,
    pub created_at: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Author {
    pub id: String,
    pub name: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Message {
    pub id: String,
    pub seq: i64,
    pub chat_id: String,
    pub sender: Sender,
    pub author: Option<Author>,
    pub body: String,
    pub client_id: Option<String>,
    pub event: Option<String>,
    pub attachment: Option<Attachment>,
    pub created_at: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Attachment {
    pub id: String,
    pub name: String,
    pub size: i64,
    pub content_type: String,
    /// Where the bytes are downloaded, with the same bearer token.
    pub url: String,
}

impl Attachment {
    pub fn url_for(id: &str) -> String {
        format!("/api/v1/attachments/{id}")
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Chat {
    pub id: String,
    pub status: ChatStatus,
    pub visitor: Visitor,
    pub assignee: Option<Agent>,
    pub created_at: String,
    pub last_seq: i64,
    pub last_message_at: Option<String>,
    pub last_message: Option<Message>,
    /// Visitor messages the agents have not read yet.
    pub unread: i64,
    /// Agent messages the visitor has not read yet (an extension for the visitor's side).
    pub unread_by_visitor: i64,
    /// Read markers; sent in poll answers as `read`, not as part of the chat.
    #[serde(skip)]
    pub read: ReadMarkers,
}

/// Read markers of both sides of a chat.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq, Default)]
pub struct ReadMarkers {
    pub visitor: i64,
    pub agent: i64,
}

/// Who is typing in a chat right now.
#[derive(Debug, Clone, Copy, Serialize, Default, PartialEq, Eq)]
pub struct Typing {
    pub visitor: bool,
    pub agent: bool,
}
