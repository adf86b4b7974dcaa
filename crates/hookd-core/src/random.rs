//! The one door to the operating system's CSPRNG, used for ids, secrets and keys.

/// Fills `N` bytes from the OS CSPRNG.
///
/// A machine whose kernel cannot give random bytes cannot safely mint secrets, so this
/// aborts the operation loudly rather than degrade to a weaker source.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    #[allow(clippy::expect_used)]
    getrandom::fill(&mut bytes).expect("the OS random number generator failed");
    bytes
}
