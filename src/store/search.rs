//! Full-text search over message bodies: SQLite's FTS5 index `messages_fts` (filled by the
//! writer behind the messages, see [`index_after`]), PostgreSQL's `messages.search`
//! tsvector (kept by the database itself); system events are left out of both.
//!
//! The parsed terms become each engine's syntax here, every one of them quoted, so nothing
//! an agent types is read as an operator: FTS5 gets `"text"` (and `"text" *` for a prefix),
//! PostgreSQL gets `phraseto_tsquery` of the text (and a prefix built from quoted lexemes).
//! Both split a term's text into words with their own tokenizer, as they split the bodies.

use crate::domain::search::{SearchQuery, Term};
use crate::store::sql::{Backend, Db, DbResult, Param};

/// How many of the newest matches are ranked. Ranking costs time for every match (bm25
/// reads each one's length and positions): a word in most of 100,000 messages took up to
/// 140 ms to rank on the 2-core test machine, under load; the newest 10,000 of them take a
/// few ms to find and ~15 ms to rank. A query that matches fewer is ranked whole.
pub const RANKED_WINDOW: i64 = 10_000;

/// The seqs of the messages that match `query`, most relevant first, at most `limit`.
///
/// Relevance, among the newest [`RANKED_WINDOW`] matches: a message that holds the whole
/// query word for word (see [`SearchQuery::exact_phrase`]) first, then the engine's rank
/// (SQLite: bm25; PostgreSQL: `ts_rank`; both count repeats), then the newest.
pub fn ranked(db: &Db, query: &SearchQuery, limit: usize) -> DbResult<Vec<i64>> {
    ranked_within(db, query, limit, RANKED_WINDOW)
}

fn ranked_within(db: &Db, query: &SearchQuery, limit: usize, window: i64) -> DbResult<Vec<i64>> {
    let limit = limit as i64;
    let last = window - 1;
    match db.backend() {
        Backend::Sqlite => {
            let matcher = fts5_query(query.terms());
            // FTS5 walks its index in rowid order without ranking anything: cheap.
            let oldest: i64 = db
                .query_opt(
                    "SELECT rowid FROM messages_fts WHERE messages_fts MATCH ?1
                     ORDER BY rowid DESC LIMIT 1 OFFSET ?2",
                    &[&matcher, &last],
                    |r| r.get(0),
                )?
                .unwrap_or(0);
            match query.exact_phrase() {
                Some(phrase) => db.query_map(
                    "SELECT rowid FROM messages_fts WHERE messages_fts MATCH ?1 AND rowid >= ?3
                     ORDER BY rowid IN (SELECT rowid FROM messages_fts
                                        WHERE messages_fts MATCH ?2 AND rowid >= ?3) DESC,
                              rank, rowid DESC
                     LIMIT ?4",
                    &[&matcher, &fts5_string(&phrase), &oldest, &limit],
                    |r| r.get(0),
                ),
                None => db.query_map(
                    "SELECT rowid FROM messages_fts WHERE messages_fts MATCH ?1 AND rowid >= ?2
                     ORDER BY rank, rowid DESC LIMIT ?3",
                    &[&matcher, &oldest, &limit],
                    |r| r.get(0),
                ),
            }
        }
        Backend::Postgres => {
            // The tsqueries are built once, then passed back as text constants (a parameter
            // typed `tsquery` could not take a Rust string): the GIN index (partial, `WHERE
            // event IS NULL`) takes a constant, and the rank does not rebuild the query for
            // each row.
            let (matcher, exact) = tsqueries(db, query)?;
            let oldest: i64 = db
                .query_opt(
                    "SELECT seq FROM messages
                     WHERE event IS NULL AND search @@ (?1::text)::tsquery
                     ORDER BY seq DESC LIMIT 1 OFFSET ?2",
                    &[&matcher, &last],
                    |r| r.get(0),
                )?
                .unwrap_or(0);
            match exact {
                Some(exact) => db.query_map(
                    "SELECT seq FROM messages
                     WHERE event IS NULL AND search @@ (?1::text)::tsquery AND seq >= ?3
                     ORDER BY (search @@ (?2::text)::tsquery) DESC,
                              ts_rank(search, (?1::text)::tsquery) DESC, seq DESC
                     LIMIT ?4",
                    &[&matcher, &exact, &oldest, &limit],
                    |r| r.get(0),
                ),
                None => db.query_map(
                    "SELECT seq FROM messages
                     WHERE event IS NULL AND search @@ (?1::text)::tsquery AND seq >= ?2
                     ORDER BY ts_rank(search, (?1::text)::tsquery) DESC, seq DESC
                     LIMIT ?3",
                    &[&matcher, &oldest, &limit],
                    |r| r.get(0),
                ),
            }
        }
    }
}

/// The seq up to which messages are in SQLite's index: the newest indexed one (0 if none).
///
/// Messages are indexed in seq order, so every message at or below it is indexed (events
/// excepted) and none above it is. `messages_fts_docsize` is FTS5's own table of one row per
/// indexed message, keyed by its rowid, our seq.
pub fn indexed_up_to(conn: &rusqlite::Connection) -> rusqlite::Result<i64> {
    conn.prepare_cached("SELECT COALESCE(MAX(id), 0) FROM messages_fts_docsize")?
        .query_row([], |r| r.get(0))
}

/// Puts the messages with a seq above `after` (system events excepted) into SQLite's index,
/// inside the caller's transaction, and returns the newest seq now looked at.
///
/// The writer calls it a few times a second and before each search (see
/// `writer::SearchIndexing`), so many messages share one new FTS5 segment, its merges and
/// its WAL pages; per message, as a trigger would, each would cost a segment of its own.
pub fn index_after(conn: &rusqlite::Connection, after: i64) -> rusqlite::Result<i64> {
    conn.prepare_cached(
        "INSERT INTO messages_fts (rowid, body)
         SELECT seq, body FROM messages WHERE seq > ?1 AND event IS NULL ORDER BY seq",
    )?
    .execute([after])?;
    conn.prepare_cached("SELECT MAX(?1, COALESCE(MAX(seq), 0)) FROM messages")?
        .query_row([after], |r| r.get(0))
}

/// An FTS5 string: the text in double quotes, its own double quotes doubled. Inside one,
/// `AND`, `*`, `(`, `:` and the rest are only text for the tokenizer.
fn fts5_string(text: &str) -> String {
    format!("\"{}\"", text.replace('"', "\"\""))
}

/// The terms as one FTS5 expression: each a quoted string (a phrase when it has several
/// words), `*` after a prefix, all joined by `AND`.
fn fts5_query(terms: &[Term]) -> String {
    let parts: Vec<String> = terms
        .iter()
        .map(|term| {
            let quoted = fts5_string(&term.text);
            if term.prefix {
                format!("{quoted} *")
            } else {
                quoted
            }
        })
        .collect();
    parts.join(" AND ")
}

/// A lexeme quoted for `to_tsquery`: in single quotes, with `'` doubled and `\` escaped.
fn ts_lexeme(word: &str) -> String {
    format!("'{}'", word.replace('\\', "\\\\").replace('\'', "''"))
}

/// The text of the query's tsquery, and of its exact phrase's, as PostgreSQL builds them:
/// the words without accents (`parley_unaccent`, as the `search` column has them).
fn tsqueries(db: &Db, query: &SearchQuery) -> DbResult<(String, Option<String>)> {
    let mut texts: Vec<String> = Vec::new();
    let mut parts: Vec<String> = Vec::new();
    for term in query.terms() {
        texts.push(if term.prefix {
            // Its words are already folded (no accents, lower case); only the last is a
            // prefix. Quoted, each stays one operand whatever it holds.
            let mut lexemes: Vec<String> = term.words.iter().map(|w| ts_lexeme(w)).collect();
            if let Some(last) = lexemes.last_mut() {
                last.push_str(":*");
            }
            lexemes.join(" <-> ")
        } else {
            term.text.clone()
        });
        let n = texts.len();
        parts.push(if term.prefix {
            format!("to_tsquery('simple', ?{n})")
        } else {
            format!("phraseto_tsquery('simple', parley_unaccent(?{n}))")
        });
    }
    let exact = match query.exact_phrase() {
        Some(phrase) => {
            texts.push(phrase);
            format!(
                "(phraseto_tsquery('simple', parley_unaccent(?{})))::text",
                texts.len()
            )
        }
        None => "NULL::text".to_string(),
    };
    let sql = format!("SELECT ({})::text, {exact}", parts.join(" && "));
    let params: Vec<&dyn Param> = texts.iter().map(|t| t as &dyn Param).collect();
    db.query_row(&sql, &params, |r| Ok((r.get(0)?, r.get(1)?)))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::domain::search::SearchQuery;

    #[test]
    fn every_term_reaches_fts5_quoted() {
        let q = SearchQuery::parse(r#"AND body:x NEAR( "two words" deli* say"s"#).unwrap();
        assert_eq!(
            fts5_query(q.terms()),
            r#""AND" AND "body:x" AND "NEAR(" AND "two words" AND "deli" * AND "say" AND "s""#
        );
    }

    #[test]
    fn lexemes_are_quoted_for_postgres() {
        assert_eq!(ts_lexeme(r"it's\"), r"'it''s\\'");
    }

    /// A migrated in-memory database with these message bodies (one chat, no events).
    fn database(bodies: &[&str]) -> rusqlite::Connection {
        let mut conn = rusqlite::Connection::open_in_memory().unwrap();
        crate::store::migrate(&mut conn).unwrap();
        conn.execute_batch(
            "INSERT INTO visitors (id, created_at) VALUES ('v', 't');
             INSERT INTO chats (id, visitor_id, created_at) VALUES ('c', 'v', 't');",
        )
        .unwrap();
        for (i, body) in bodies.iter().enumerate() {
            conn.execute(
                "INSERT INTO messages (id, chat_id, sender, body, created_at)
                 VALUES (?1, 'c', 'visitor', ?2, 't')",
                (format!("m{i}"), body),
            )
            .unwrap();
        }
        index_after(&conn, indexed_up_to(&conn).unwrap()).unwrap();
        conn
    }

    fn search(conn: &rusqlite::Connection, q: &str) -> Vec<i64> {
        ranked(&Db::Sqlite(conn), &SearchQuery::parse(q).unwrap(), 10).unwrap()
    }

    #[test]
    fn fts5_finds_words_prefixes_phrases_and_accents() {
        let conn = database(&[
            "Déjà vu",
            "we explained the refund policy to the customer at length today",
            "policy, then refund",
            "shipping",
        ]);
        assert_eq!(search(&conn, "deja"), vec![1]);
        assert_eq!(search(&conn, "DÉJÀ"), vec![1]);
        assert_eq!(search(&conn, "ship*"), vec![4]);
        assert_eq!(search(&conn, "\"refund policy\""), vec![2]);
        // The shorter message ranks higher by bm25 alone; the exact phrase goes first.
        assert_eq!(search(&conn, "policy refund"), vec![3, 2]);
        assert_eq!(search(&conn, "refund policy"), vec![2, 3]);
        assert!(search(&conn, "refund shipping").is_empty());
    }

    #[test]
    fn only_the_newest_matches_of_the_window_are_ranked() {
        let conn = database(&["refund refund refund", "refund later", "a refund now"]);
        let query = SearchQuery::parse("refund").unwrap();
        let db = Db::Sqlite(&conn);
        assert_eq!(ranked_within(&db, &query, 10, 10).unwrap()[0], 1);
        // The best match is the oldest: outside a window of the newest two.
        assert_eq!(
            sorted(ranked_within(&db, &query, 10, 2).unwrap()),
            vec![2, 3]
        );
    }

    fn sorted(mut seqs: Vec<i64>) -> Vec<i64> {
        seqs.sort();
        seqs
    }

    #[test]
    fn odd_input_never_breaks_the_fts5_syntax() {
        let conn = database(&["a NEAR b", "x AND y OR z", "body:col"]);
        for q in [
            "AND OR NOT ( * \"",
            "NEAR(a b)",
            "body:col",
            "a\"b",
            "^x",
            "- + { } [ ]",
            "\"\"\"x",
            "ⅷ ⑴ ½ ﬁ",
            "x* * **",
        ] {
            let Ok(query) = SearchQuery::parse(q) else {
                continue;
            };
            ranked(&Db::Sqlite(&conn), &query, 10).unwrap_or_else(|e| panic!("{q:?}: {e}"));
        }
    }

    #[test]
    fn only_indexed_messages_leave_the_index_and_events_never_enter_it() {
        let conn = database(&["alpha one", "alpha two"]);
        let insert = "INSERT INTO messages (id, chat_id, sender, body, event, created_at)
                      VALUES (?1, 'c', 'visitor', ?2, ?3, 't')";
        conn.execute(insert, ("m2", "alpha three", None::<&str>))
            .unwrap();
        conn.execute(insert, ("m3", "alpha closed", Some("closed")))
            .unwrap();
        assert_eq!(indexed_up_to(&conn).unwrap(), 2);
        // Deleting a message the index never saw must not touch the index ('delete' of an
        // unknown row would corrupt it); deleting an indexed one takes it out.
        conn.execute("DELETE FROM messages WHERE seq IN (2, 3)", [])
            .unwrap();
        assert_eq!(index_after(&conn, 2).unwrap(), 4);
        assert_eq!(search(&conn, "alpha"), vec![1]);
        conn.execute_batch("INSERT INTO messages_fts (messages_fts) VALUES ('integrity-check')")
            .unwrap();
        // Nothing new: the mark stays where it was looked up to.
        assert_eq!(index_after(&conn, 4).unwrap(), 4);
    }
}
