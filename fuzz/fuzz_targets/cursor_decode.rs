//! Pagination tokens arrive in query strings from anyone holding an API key. Decoding
//! must never panic, must accept nothing this key did not issue for this scope, and
//! must give back exactly the position that was encoded.
#![no_main]

use hookd_core::{Cursor, CursorKey};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: (&str, &str, i64)| {
    let (token, scope, position) = input;
    let key = CursorKey::from_bytes([7; 32]);
    if let Ok(cursor) = Cursor::decode(token, &key, scope) {
        // Only a token `encode` would have produced for this scope gets through.
        assert_eq!(cursor.encode(&key, scope), token, "accepted a token it did not issue");
    }
    let issued = Cursor { position }.encode(&key, scope);
    assert_eq!(Cursor::decode(&issued, &key, scope), Ok(Cursor { position }));
    assert!(Cursor::decode(&issued, &CursorKey::from_bytes([8; 32]), scope).is_err());
});
