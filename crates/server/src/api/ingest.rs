//! `POST /ingest/v1/events`: the operator's payment systems post batches of payment events.
//!
//! Authenticated with an operator service key (`Authorization: Basic base64(client_id:secret)`,
//! checked at the same cost whatever is wrong). Each event is parsed on its own
//! ([`crate::ingest::parse_event`]); the good ones go to the store in one call, in order, and the
//! answer lists every event's outcome in request order. An event id posted before answers as it
//! did then, so posting a batch again gives the same body and changes nothing.

use crate::credentials::{basic_credentials, check_secret};
use crate::ingest::parse_event;
use crate::middleware::INGEST_BODY_LIMIT;
use crate::{AppError, AppState};
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use ledgerport_core::engine::Rejection;
use ledgerport_core::ids::LedgerId;
use ledgerport_core::world::{ApiKey, KeyKind, KeyOwner};
use ledgerport_store::EventOutcome;
use serde::Serialize;
use serde_json::Value;

/// The path of the endpoint.
pub const PATH: &str = "/ingest/v1/events";

/// Most events one batch may carry.
pub const MAX_EVENTS: usize = 10_000;

/// The service key a request was authenticated with.
#[derive(Debug, Clone)]
pub struct ServiceCaller(pub ApiKey);

/// Lets only requests with an operator service key's Basic credentials through, before their
/// body is read. Anything else (no or malformed header, unknown client id, wrong secret, revoked
/// keys, keys of another kind) gets the same 401.
pub async fn authenticate(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    match service_key(&state, req.headers()).await {
        Ok(key) => {
            req.extensions_mut().insert(ServiceCaller(key));
            next.run(req).await
        }
        Err(e) => {
            let mut res = e.into_response();
            if res.status() == axum::http::StatusCode::UNAUTHORIZED {
                res.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Basic realm=\"ledgerport-ingest\""),
                );
            }
            res
        }
    }
}

async fn service_key(state: &AppState, headers: &HeaderMap) -> Result<ApiKey, AppError> {
    let (client_id, secret) = basic_credentials(headers).map_err(|_| AppError::Unauthorized)?;
    let found = state.store.key_by_client_id(&client_id).await?;
    check_secret(found, &secret)
        .filter(|k| k.kind == KeyKind::Service && k.owner == KeyOwner::Operator)
        .ok_or(AppError::Unauthorized)
}

/// What became of one posted event, as the answer lists it.
enum Slot {
    /// Parsed; the store's outcome is the n-th of its answer.
    Parsed,
    /// Not even parsed.
    Bad(Option<String>, Rejection),
}

pub async fn post_events(
    State(state): State<AppState>,
    axum::Extension(ServiceCaller(key)): axum::Extension<ServiceCaller>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, AppError> {
    let content_type = super::header(&headers, "Content-Type")?.unwrap_or("");
    let essence = content_type.split(';').next().unwrap_or("").trim();
    if !essence.eq_ignore_ascii_case("application/json") {
        return Err(AppError::bad("Content-Type", "must be application/json"));
    }
    let doc: Value = serde_json::from_slice(&body)
        .map_err(|e| AppError::bad("body", format!("is not valid JSON ({e})")))?;
    let Some(doc) = doc.as_object() else {
        return Err(AppError::bad(
            "body",
            "must be a JSON object {\"events\":[…]}",
        ));
    };
    let events = match doc.get("events") {
        Some(Value::Array(events)) => events,
        Some(_) => return Err(AppError::bad("events", "must be an array of events")),
        None => return Err(AppError::bad("events", "is required: an array of events")),
    };
    if events.len() > MAX_EVENTS {
        return Err(AppError::bad(
            "events",
            format!(
                "at most {MAX_EVENTS} events per batch, this one has {}",
                events.len()
            ),
        ));
    }

    let mut slots = Vec::with_capacity(events.len());
    let mut parsed = Vec::with_capacity(events.len());
    for v in events {
        match parse_event(v) {
            Ok(ev) => {
                parsed.push(ev);
                slots.push(Slot::Parsed);
            }
            Err((id, r)) => slots.push(Slot::Bad(id, r)),
        }
    }
    let expected = parsed.len();
    let outcomes = if parsed.is_empty() {
        Vec::new()
    } else {
        state.store.ingest_events(parsed, state.clock.now()).await?
    };
    if outcomes.len() != expected {
        return Err(AppError::Internal(format!(
            "the store answered {} outcomes for {expected} events",
            outcomes.len()
        )));
    }

    let mut outcomes = outcomes.into_iter();
    let (mut accepted, mut rejected) = (0usize, 0usize);
    let mut results = Vec::with_capacity(slots.len());
    for slot in slots {
        let result = match slot {
            Slot::Bad(id, r) => EventResult::Rejected {
                event_id: id,
                rejection: r,
            },
            Slot::Parsed => match outcomes.next() {
                Some(EventOutcome::Accepted {
                    event_id,
                    ledger_id,
                    entries,
                }) => EventResult::Accepted {
                    event_id,
                    ledger_id,
                    entries,
                },
                Some(EventOutcome::Rejected {
                    event_id,
                    rejection,
                }) => EventResult::Rejected {
                    event_id: Some(event_id),
                    rejection,
                },
                None => return Err(AppError::Internal("outcomes ran out".into())),
            },
        };
        match result {
            EventResult::Accepted { .. } => accepted += 1,
            EventResult::Rejected { .. } => rejected += 1,
        }
        results.push(result);
    }
    state.metrics.events_ingested(accepted, rejected);
    tracing::info!(
        key_id = key.id,
        events = results.len(),
        accepted,
        rejected,
        "ingested a batch of payment events"
    );
    let answer = Answer {
        accepted,
        rejected,
        results,
    };
    Ok(([(header::CACHE_CONTROL, "no-store")], Json(answer)).into_response())
}

/// The answer's body. Written straight from these values rather than through a
/// `serde_json::Value` per event (a map and its keys allocated for every result of a batch of up
/// to 10,000); the fields are in the order `Value`'s sorted maps wrote them, so the bytes are the
/// same (a test compares them).
#[derive(Serialize)]
struct Answer {
    accepted: usize,
    rejected: usize,
    results: Vec<EventResult>,
}

/// One event's line of the answer.
enum EventResult {
    Accepted {
        event_id: String,
        ledger_id: LedgerId,
        entries: u32,
    },
    Rejected {
        event_id: Option<String>,
        rejection: Rejection,
    },
}

impl Serialize for EventResult {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(Some(4))?;
        match self {
            EventResult::Accepted {
                event_id,
                ledger_id,
                entries,
            } => {
                m.serialize_entry("entries", entries)?;
                m.serialize_entry("eventId", event_id)?;
                m.serialize_entry("ledgerId", ledger_id.as_str())?;
                m.serialize_entry("status", "accepted")?;
            }
            EventResult::Rejected {
                event_id,
                rejection,
            } => {
                m.serialize_entry("eventId", event_id)?;
                m.serialize_entry("field", rejection.field)?;
                m.serialize_entry("reason", &rejection.reason)?;
                m.serialize_entry("status", "rejected")?;
            }
        }
        m.end()
    }
}

/// The body limit of this route (the rest of the API keeps the smaller default).
pub fn body_limit() -> axum::extract::DefaultBodyLimit {
    axum::extract::DefaultBodyLimit::max(INGEST_BODY_LIMIT)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The answer as it was built before: a `serde_json::Value` per result.
    fn as_values(answer: &Answer) -> Value {
        let results: Vec<Value> = answer
            .results
            .iter()
            .map(|r| match r {
                EventResult::Accepted {
                    event_id,
                    ledger_id,
                    entries,
                } => json!({
                    "eventId": event_id, "status": "accepted",
                    "ledgerId": ledger_id, "entries": entries,
                }),
                EventResult::Rejected {
                    event_id,
                    rejection,
                } => json!({
                    "eventId": event_id, "status": "rejected",
                    "field": rejection.field, "reason": rejection.reason,
                }),
            })
            .collect();
        json!({"results": results, "accepted": answer.accepted, "rejected": answer.rejected})
    }

    #[test]
    fn the_answer_is_written_byte_for_byte_as_through_json_values() {
        let ledger = LedgerId::parse("ledger", "4711").expect("ledger id");
        let answer = Answer {
            accepted: 1,
            rejected: 2,
            results: vec![
                EventResult::Accepted {
                    event_id: "e-\"1\"\u{e6}".into(),
                    ledger_id: ledger,
                    entries: 2,
                },
                EventResult::Rejected {
                    event_id: None,
                    rejection: Rejection::new("event", "must be a JSON object"),
                },
                EventResult::Rejected {
                    event_id: Some("e-2\n".into()),
                    rejection: Rejection::new("amount", "would make \"x\" \u{1} overflow"),
                },
            ],
        };
        let direct = serde_json::to_vec(&answer).expect("direct");
        let through_values = serde_json::to_vec(&as_values(&answer)).expect("values");
        assert_eq!(
            String::from_utf8(direct).expect("utf-8"),
            String::from_utf8(through_values).expect("utf-8")
        );
    }
}
