//! `@name` mentions in an agent's private note: which handles a note names, and which agent
//! a handle means. An agent's handle is the local part of its email (`@ana` for
//! `ana@example.com`); its name without spaces (`@AnaLima`) works too. Case does not count.

use crate::domain::Agent;

/// The most mentions one note notifies; more are ignored (a note is not a mailing list).
pub const MAX_MENTIONS: usize = 10;

/// The handles after each `@` that starts a word, in order, without duplicates
/// (lowercased). `ana@example.com` inside a word is an address, not a mention.
pub fn handles(body: &str) -> Vec<String> {
    let mut found: Vec<String> = Vec::new();
    let mut previous: Option<char> = None;
    for (at, c) in body.char_indices() {
        let starts_word = previous.is_none_or(|p| !(p.is_alphanumeric() || p == '_'));
        previous = Some(c);
        if c != '@' || !starts_word {
            continue;
        }
        let rest = &body[at + 1..];
        let end = rest
            .char_indices()
            .find(|&(_, c)| !is_handle_char(c))
            .map_or(rest.len(), |(i, _)| i);
        // A handle does not end in a dot: "@ana." ends a sentence.
        let handle = rest[..end].trim_end_matches('.').to_lowercase();
        if !handle.is_empty() && !found.contains(&handle) {
            found.push(handle);
        }
    }
    found
}

fn is_handle_char(c: char) -> bool {
    c.is_alphanumeric() || matches!(c, '_' | '-' | '.' | '+')
}

/// The handle `agent` answers to by its email.
pub fn handle_of(agent: &Agent) -> String {
    agent
        .email
        .split('@')
        .next()
        .unwrap_or_default()
        .to_lowercase()
}

/// Whether `handle` (lowercased) names `agent`.
pub fn names(handle: &str, agent: &Agent) -> bool {
    let squashed: String = agent
        .name
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect::<String>()
        .to_lowercase();
    handle == handle_of(agent) || handle == squashed
}

/// The active agents `body` mentions, other than its author, at most [`MAX_MENTIONS`].
pub fn mentioned<'a>(body: &str, author_id: &str, agents: &'a [Agent]) -> Vec<&'a Agent> {
    let mut out: Vec<&Agent> = Vec::new();
    for handle in handles(body) {
        for agent in agents {
            if !agent.disabled
                && agent.id != author_id
                && names(&handle, agent)
                && !out.iter().any(|a| a.id == agent.id)
            {
                out.push(agent);
            }
        }
        if out.len() >= MAX_MENTIONS {
            out.truncate(MAX_MENTIONS);
            break;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Role;

    fn agent(id: &str, name: &str, email: &str) -> Agent {
        Agent {
            id: id.into(),
            name: name.into(),
            email: email.into(),
            role: Role::Agent,
            disabled: false,
            availability: Default::default(),
            email_notifications: true,
            created_at: String::new(),
        }
    }

    #[test]
    fn handles_start_a_word_and_end_at_punctuation() {
        assert_eq!(
            handles("@ana can you look? cc @Bo.Li, and @ana again. Mail ana@example.com @"),
            ["ana", "bo.li"]
        );
        assert_eq!(handles("(@zoé) @über_1-x+y."), ["zoé", "über_1-x+y"]);
        assert!(handles("no mentions here, x@y").is_empty());
    }

    #[test]
    fn a_handle_is_the_email_local_part_or_the_name_without_spaces() {
        let agents = [
            agent("1", "Ana Lima", "ana@example.com"),
            agent("2", "Bo", "bo.li@example.com"),
            agent("3", "Cy", "cy@example.com"),
        ];
        let ids = |body: &str, author: &str| -> Vec<String> {
            mentioned(body, author, &agents)
                .iter()
                .map(|a| a.id.clone())
                .collect()
        };
        assert_eq!(ids("@ANA and @bo.li", "3"), ["1", "2"]);
        assert_eq!(ids("@AnaLima", "3"), ["1"]);
        // The author is not notified of its own note; unknown handles name no one.
        assert_eq!(ids("@cy @nobody @ana", "3"), ["1"]);
        // Each agent once.
        assert_eq!(ids("@ana @AnaLima @ana", "3"), ["1"]);
    }

    #[test]
    fn a_disabled_agent_is_not_mentioned_and_the_count_is_capped() {
        let mut agents: Vec<Agent> = (0..15)
            .map(|i| agent(&i.to_string(), &format!("A{i}"), &format!("a{i}@x.org")))
            .collect();
        agents[0].disabled = true;
        let body: String = (0..15).map(|i| format!("@a{i} ")).collect();
        let found = mentioned(&body, "nobody", &agents);
        assert_eq!(found.len(), MAX_MENTIONS);
        assert!(found.iter().all(|a| a.id != "0"));
    }
}
