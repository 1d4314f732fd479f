//! Device login (RFC 8628): the user code alphabet, its display form and how typed input is
//! normalised, and the two steps of the client side: [`start`] makes a code, [`poll`] turns an
//! approved code into an API key (at most one, also under concurrent polls). The HTTP side is
//! `crate::http::device` (API) and `crate::http::device_pages` (the browser); records live in
//! the store.

use std::time::Duration;

use super::credential::{new_api_key, random_token, sha256};
use super::text::{NameError, clean_name, displayable};
use crate::audit::{Audit, AuditKind};
use crate::store::{
    ApiKeyRecord, DeviceRecord, DeviceStatus, PollOutcome, Store, StoreError, UserRecord,
};

/// Consonants only, no look-alikes and no vowels (so codes never spell words).
pub(crate) const USER_CODE_ALPHABET: &[u8; 20] = b"BCDFGHJKLMNPQRSTVWXZ";
/// Letters in a user code.
pub(crate) const USER_CODE_LEN: usize = 8;

/// A fresh random user code, normalised (8 letters, no dash).
pub(crate) fn new_user_code() -> String {
    let mut code = String::with_capacity(USER_CODE_LEN);
    while code.len() < USER_CODE_LEN {
        let mut byte = [0u8; 1];
        rand::fill(&mut byte);
        // 240 is the largest multiple of 20 below 256: no modulo bias.
        if byte[0] < 240 {
            code.push(USER_CODE_ALPHABET[usize::from(byte[0]) % 20] as char);
        }
    }
    code
}

/// `BCDFGHJK` shown as `BCDF-GHJK`.
pub(crate) fn display_user_code(normalised: &str) -> String {
    if normalised.len() == USER_CODE_LEN {
        format!("{}-{}", &normalised[..4], &normalised[4..])
    } else {
        normalised.to_owned()
    }
}

/// Typed input as a normalised code: case, dashes and spaces ignored. `None` when it cannot be
/// a code at all.
pub(crate) fn normalise_user_code(input: &str) -> Option<String> {
    if input.len() > 64 {
        return None;
    }
    let code: String = input
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .map(|c| c.to_ascii_uppercase())
        .collect();
    let valid =
        code.len() == USER_CODE_LEN && code.bytes().all(|b| USER_CODE_ALPHABET.contains(&b));
    valid.then_some(code)
}

/// The name a client without one is shown under.
const UNNAMED_CLIENT: &str = "unnamed client";
/// Attempts at a user code not taken by a live login before giving up.
const USER_CODE_ATTEMPTS: usize = 16;

/// Who asks for a device code.
#[derive(Debug, Clone, Default)]
pub(crate) struct CodeRequest {
    /// What the client calls itself; `None` or blank: [`UNNAMED_CLIENT`].
    pub client_name: Option<String>,
    /// The requester's address and user agent, shown on the confirm page.
    pub requester_ip: String,
    pub requester_agent: String,
}

/// A device code made by [`start`].
#[derive(Debug)]
pub(crate) struct StartedCode {
    /// The secret the client polls with (only its SHA-256 is stored).
    pub device_code: String,
    /// The stored record; its user code normalised.
    pub record: DeviceRecord,
}

/// Why [`start`] made no code.
#[derive(Debug, thiserror::Error)]
pub(crate) enum StartError {
    #[error("client_name: {0}")]
    ClientName(#[source] NameError),
    #[error("no free user code: try again")]
    NoFreeCode,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The client's name as the approval page will show it; refused when it could mislead (see
/// [`super::text`]).
pub(crate) fn client_name(requested: Option<&str>) -> Result<String, NameError> {
    match requested {
        None => Ok(UNNAMED_CLIENT.to_owned()),
        Some(name) if name.trim().is_empty() => Ok(UNNAMED_CLIENT.to_owned()),
        Some(name) => clean_name(name, super::text::MAX_NAME_CHARS),
    }
}

/// Makes a pending device login that lives `ttl` and may be polled every `interval`.
pub(crate) async fn start(
    store: &Store,
    request: CodeRequest,
    ttl: Duration,
    interval: Duration,
) -> Result<StartedCode, StartError> {
    let client_name =
        client_name(request.client_name.as_deref()).map_err(StartError::ClientName)?;
    let device_code = random_token(32);
    let device_hash = sha256(device_code.as_bytes());
    let mut record = DeviceRecord {
        user_code: String::new(),
        client_name,
        requester_ip: request.requester_ip,
        requester_agent: displayable(&request.requester_agent, 200),
        created_at: crate::clock::now_rfc3339(),
        expires_unix: crate::clock::unix_secs() + ttl.as_secs(),
        interval_secs: interval.as_secs(),
        last_poll_ms: 0,
        claimed_by: None,
        status: DeviceStatus::Pending,
    };
    for _ in 0..USER_CODE_ATTEMPTS {
        record.user_code = new_user_code();
        if store.create_device_code(&device_hash, &record).await? {
            return Ok(StartedCode {
                device_code,
                record,
            });
        }
    }
    Err(StartError::NoFreeCode)
}

/// What a poll of a device code gives.
#[derive(Debug)]
pub(crate) enum Poll {
    /// Approved: the key, made by this poll and durable, owned by the approving `user`.
    Issued {
        secret: String,
        key: ApiKeyRecord,
        user: UserRecord,
    },
    /// Anything else: what the store decided (never [`PollOutcome::Issued`]), or
    /// [`PollOutcome::Invalid`] when the approving user is gone.
    Waiting(PollOutcome),
}

/// One poll with `device_code` at `now_ms`: at most one poll of an approved code gets a key.
pub(crate) async fn poll(
    store: &Store,
    device_code: &str,
    now_ms: u64,
    key_expires_unix: Option<u64>,
) -> Result<Poll, StoreError> {
    let key = new_api_key();
    let device_hash = sha256(device_code.as_bytes());
    // The key's name needs the code's client: read it first (a miss is answered by the poll).
    let name = match store.device_code(&device_hash).await? {
        Some(device) => format!(
            "{} ({})",
            device.client_name,
            device.created_at[..device.created_at.len().min(19)].replace('T', " ")
        ),
        None => String::new(),
    };
    let record = ApiKeyRecord {
        id: random_token(9),
        username: String::new(),
        name,
        prefix: key.prefix.clone(),
        created_at: crate::clock::now_rfc3339(),
        last_used_unix: None,
        expires_unix: key_expires_unix,
        from_device: true,
    };
    let issued = match store
        .poll_device(&device_hash, now_ms, &key.hash, &record)
        .await?
    {
        PollOutcome::Issued(issued) => issued,
        other => return Ok(Poll::Waiting(other)),
    };
    store.flush().await?;
    let Some(user) = store.user(&issued.username).await? else {
        return Ok(Poll::Waiting(PollOutcome::Invalid));
    };
    tracing::info!(username = %user.username, key_id = %issued.id, client = %issued.name, "device login: API key issued");
    Audit::success(AuditKind::LoginDevice)
        .actor(&user.username)
        .subject(&issued.id)
        .reason(format!("key \"{}\"", issued.name))
        .record(store)
        .await;
    Ok(Poll::Issued {
        secret: key.secret,
        key: issued,
        user,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn started(store: &Store) -> StartedCode {
        let request = CodeRequest {
            client_name: Some("coder CLI".into()),
            requester_ip: "127.0.0.1".into(),
            requester_agent: "agent\u{7}".into(),
        };
        start(
            store,
            request,
            Duration::from_secs(600),
            Duration::from_secs(0),
        )
        .await
        .unwrap()
    }

    async fn approve(store: &Store, code: &StartedCode, username: &str) {
        let hash = sha256(code.device_code.as_bytes());
        let username = username.to_owned();
        store
            .update_device(
                &hash,
                |_| true,
                |d| {
                    d.status = DeviceStatus::Approved {
                        username: username.clone(),
                    }
                },
            )
            .await
            .unwrap()
            .unwrap();
    }

    #[tokio::test]
    async fn client_names_default_and_refuse_what_could_mislead() {
        assert_eq!(client_name(None).unwrap(), UNNAMED_CLIENT);
        assert_eq!(client_name(Some("   ")).unwrap(), UNNAMED_CLIENT);
        assert_eq!(
            client_name(Some(" coder CLI on box ")).unwrap(),
            "coder CLI on box"
        );
        assert!(client_name(Some("evil\u{202E}txt")).is_err());
        let long = "x".repeat(super::super::text::MAX_NAME_CHARS + 1);
        assert!(client_name(Some(&long)).is_err());
    }

    #[tokio::test]
    async fn a_started_code_is_stored_by_its_hash_and_waits_for_approval() {
        let (_dir, store) = crate::store::test_store();
        let code = started(&store).await;
        assert_eq!(
            normalise_user_code(&code.record.user_code).as_deref(),
            Some(code.record.user_code.as_str())
        );
        assert_eq!(code.record.requester_agent, "agent");
        let stored = store
            .device_code(&sha256(code.device_code.as_bytes()))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(stored, code.record);
        let bad = CodeRequest {
            client_name: Some("a\u{202E}b".into()),
            ..CodeRequest::default()
        };
        let refused = start(
            &store,
            bad,
            Duration::from_secs(600),
            Duration::from_secs(5),
        )
        .await;
        assert!(matches!(refused, Err(StartError::ClientName(_))));
        let poll = poll(&store, &code.device_code, crate::clock::unix_ms(), None)
            .await
            .unwrap();
        assert!(
            matches!(poll, Poll::Waiting(PollOutcome::Pending)),
            "{poll:?}"
        );
    }

    #[tokio::test]
    async fn an_approved_code_gives_one_audited_key_to_the_approver() {
        let (_dir, store) = crate::store::test_store();
        store
            .create_user(&UserRecord {
                username: "ann".into(),
                email: "ann@example.com".into(),
                name: "Ann".into(),
                source: crate::store::UserSource::Local,
                disabled: false,
                created_at: crate::clock::now_rfc3339(),
                access: vec![crate::store::AccessBinding::for_role(
                    crate::vocab::Role::Developer,
                )],
                password_hash: None,
            })
            .await
            .unwrap();
        let code = started(&store).await;
        approve(&store, &code, "ann").await;
        let now = crate::clock::unix_ms();
        let Poll::Issued { secret, key, user } =
            poll(&store, &code.device_code, now, Some(4_000_000_000))
                .await
                .unwrap()
        else {
            panic!("the approved code gives a key");
        };
        assert_eq!(user.username, "ann");
        assert_eq!(key.username, "ann");
        assert_eq!(key.expires_unix, Some(4_000_000_000), "--cli-key-days");
        assert!(key.name.starts_with("coder CLI ("), "{}", key.name);
        let stored = store
            .api_key_by_hash(&sha256(secret.as_bytes()))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(stored, key);
        let events = store.audit_events(None, 5, Some("login")).await.unwrap();
        assert_eq!(events[0].subject.as_deref(), Some(key.id.as_str()));
        let again = poll(&store, &code.device_code, now + 60_000, None)
            .await
            .unwrap();
        assert!(
            matches!(again, Poll::Waiting(PollOutcome::Invalid)),
            "{again:?}"
        );
    }

    #[tokio::test]
    async fn a_code_approved_by_a_user_since_deleted_gives_nothing() {
        let (_dir, store) = crate::store::test_store();
        let code = started(&store).await;
        approve(&store, &code, "ghost").await;
        let poll = poll(&store, &code.device_code, crate::clock::unix_ms(), None)
            .await
            .unwrap();
        assert!(
            matches!(
                poll,
                Poll::Waiting(PollOutcome::Invalid | PollOutcome::Denied)
            ),
            "{poll:?}"
        );
    }

    #[tokio::test]
    async fn codes_use_the_alphabet_and_show_with_a_dash() {
        for _ in 0..100 {
            let code = new_user_code();
            assert_eq!(normalise_user_code(&code).as_deref(), Some(code.as_str()));
            let shown = display_user_code(&code);
            assert_eq!(shown.len(), 9);
            assert_eq!(&shown[4..5], "-");
        }
    }

    #[tokio::test]
    async fn input_is_normalised_for_case_dashes_and_spaces() {
        assert_eq!(
            normalise_user_code("bcdf-ghjk").as_deref(),
            Some("BCDFGHJK")
        );
        assert_eq!(
            normalise_user_code(" BCDF GHJK\n").as_deref(),
            Some("BCDFGHJK")
        );
        assert_eq!(
            normalise_user_code("B-C-D-F-G-H-J-K").as_deref(),
            Some("BCDFGHJK")
        );
        for bad in [
            "",
            "BCDF-GHJ",
            "BCDF-GHJKL",
            "ABCD-EFGH",
            "BCDF-GHJ1",
            "ВCDF-GHJK",
        ] {
            assert_eq!(normalise_user_code(bad), None, "{bad:?}");
        }
    }
}
