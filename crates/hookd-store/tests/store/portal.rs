//! Customer portal sessions every backend must keep: a link redeemed once, sessions
//! that end when revoked or expired. Run by the conformance macro in `main.rs`.

use hookd_core::{PortalSessionId, PortalToken, PortalTokenKind, TokenHash, operations_account};
use hookd_store::{PortalSession, Store, StoreError};

use super::behaviours::{NOW, new_account};

const HOUR: i64 = 3_600_000;

async fn minted(store: &dyn Store, read_only: bool) -> (PortalSession, PortalToken) {
    let account_id = new_account(store, "a").await;
    let session = PortalSession {
        session_id: PortalSessionId::new_random(),
        account_id,
        read_only,
        created_at: NOW,
        expires_at: NOW + HOUR,
    };
    let link = PortalToken::generate(PortalTokenKind::Link, &session.session_id);
    store.create_portal_session(&session, &link.hash()).await.expect("mint");
    (session, link)
}

fn credential(session: &PortalSession) -> PortalToken {
    PortalToken::generate(PortalTokenKind::Session, &session.session_id)
}

pub async fn a_portal_link_is_redeemed_once_for_a_live_session(store: &dyn Store) {
    let (session, link) = minted(store, true).await;
    let id = &session.session_id;
    assert_eq!(store.find_portal_session(id, NOW).await.expect("find"), None, "no session before redemption");
    let first = credential(&session);
    let redeemed = store.redeem_portal_link(id, &link.hash(), &first.hash(), NOW + 1).await.expect("redeem");
    assert_eq!(redeemed, Some(session.clone()));
    let again = store.redeem_portal_link(id, &link.hash(), &credential(&session).hash(), NOW + 2).await;
    assert_eq!(again.expect("redeem"), None, "a used link is refused");
    let (found, hash) = store.find_portal_session(id, NOW + 3).await.expect("find").expect("live");
    assert_eq!(found, session);
    assert!(hash.matches(&first.hash()), "the first redemption's credential stands");
}

pub async fn a_wrong_expired_or_revoked_link_is_not_redeemed(store: &dyn Store) {
    let (session, link) = minted(store, false).await;
    let id = &session.session_id;
    let credential = credential(&session).hash();
    let wrong = TokenHash::of("pl_not-the-link");
    assert_eq!(store.redeem_portal_link(id, &wrong, &credential, NOW).await.expect("redeem"), None);
    assert_eq!(
        store.redeem_portal_link(id, &link.hash(), &credential, NOW + HOUR).await.expect("redeem"),
        None,
        "expired"
    );
    let unknown = PortalSessionId::new_random();
    assert_eq!(
        store.redeem_portal_link(&unknown, &link.hash(), &credential, NOW).await.expect("redeem"),
        None
    );
    store.revoke_portal_session(id, NOW).await.expect("revoke");
    assert_eq!(
        store.redeem_portal_link(id, &link.hash(), &credential, NOW + 1).await.expect("redeem"),
        None,
        "revoked"
    );
}

pub async fn a_portal_session_ends_when_revoked_or_expired(store: &dyn Store) {
    let (session, link) = minted(store, false).await;
    let id = &session.session_id;
    store.redeem_portal_link(id, &link.hash(), &credential(&session).hash(), NOW).await.expect("redeem");
    assert!(store.find_portal_session(id, NOW + HOUR - 1).await.expect("find").is_some());
    assert!(store.find_portal_session(id, NOW + HOUR).await.expect("find").is_none(), "expired");
    store.revoke_portal_session(id, NOW + 1).await.expect("revoke");
    assert!(store.find_portal_session(id, NOW + 2).await.expect("find").is_none(), "revoked");
    let unknown = store.revoke_portal_session(&PortalSessionId::new_random(), NOW).await;
    assert!(matches!(unknown, Err(StoreError::NotFound)));
}

pub async fn portal_sessions_are_only_for_existing_customer_accounts(store: &dyn Store) {
    for account_id in [hookd_core::AccountId::new_random(), operations_account()] {
        let session = PortalSession {
            session_id: PortalSessionId::new_random(),
            account_id,
            read_only: false,
            created_at: NOW,
            expires_at: NOW + HOUR,
        };
        let link = PortalToken::generate(PortalTokenKind::Link, &session.session_id);
        let refused = store.create_portal_session(&session, &link.hash()).await;
        assert!(matches!(refused, Err(StoreError::NotFound)), "{refused:?}");
    }
}

pub async fn ended_portal_sessions_are_pruned_and_live_ones_kept(store: &dyn Store) {
    let (ended, _) = minted(store, false).await;
    let later = PortalSession {
        session_id: PortalSessionId::new_random(),
        account_id: ended.account_id.clone(),
        read_only: false,
        created_at: NOW,
        expires_at: NOW + 3 * HOUR,
    };
    let link = PortalToken::generate(PortalTokenKind::Link, &later.session_id);
    store.create_portal_session(&later, &link.hash()).await.expect("mint");
    assert_eq!(
        store.prune_portal_sessions(ended.expires_at).await.expect("prune"),
        0,
        "none ended before then"
    );
    assert_eq!(store.prune_portal_sessions(ended.expires_at + 1).await.expect("prune"), 1);
    let gone = store.revoke_portal_session(&ended.session_id, NOW).await;
    assert!(matches!(gone, Err(StoreError::NotFound)), "the ended one is gone");
    store.revoke_portal_session(&later.session_id, NOW).await.expect("the live one is kept");
}
