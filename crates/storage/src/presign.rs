//! Presigned blob URLs: a URL that lets whoever holds it read (`GET`) or write (`PUT`) one blob
//! until it expires, with no other credential.
//!
//! The URL is `{base}/api/v1/presigned/{tenant}/{namespace}/{key}?expires={ms}&signature={hex}`
//! (each key segment percent-encoded), and the signature is HMAC-SHA256 over
//! `"{METHOD}\n{tenant}\n{namespace}\n{key}\n{expires}"` with the node's secret: 32 random
//! bytes kept in `<data-dir>/blobs.key` (created at first start, mode 0600), so URLs stay
//! valid across restarts and deleting the file revokes every URL handed out. A request is
//! checked for its signature first (any change of the method, scope, key, expiry or signature
//! is `signature_invalid`), then for its expiry (`url_expired`).

use std::path::Path;

use hmac::{Hmac, Mac as _};
use plexspaces_types::ErrorCode;
use sha2::Sha256;

use crate::{Error, Result, blobs};

/// The lifetime of a URL presigned without one: 15 minutes.
pub const DEFAULT_TTL_MS: u64 = 15 * 60 * 1000;

/// The longest lifetime of a URL: 7 days.
pub const MAX_TTL_MS: u64 = 7 * 24 * 3600 * 1000;

/// The path under which the node serves presigned URLs.
pub const PATH_PREFIX: &str = "/api/v1/presigned";

const SECRET_BYTES: usize = 32;

/// What a presigned URL allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// Read the blob (`GET`, and `HEAD`).
    Get,
    /// Write the blob (`PUT`).
    Put,
}

impl Method {
    /// `GET` or `PUT`, in any case.
    pub fn parse(method: &str) -> Result<Self> {
        if method.eq_ignore_ascii_case("GET") {
            Ok(Method::Get)
        } else if method.eq_ignore_ascii_case("PUT") {
            Ok(Method::Put)
        } else {
            Err(Error::new(
                ErrorCode::InvalidArguments,
                format!("a presigned URL is for \"GET\" or \"PUT\", not {method:?}"),
            ))
        }
    }

    /// The method's name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Put => "PUT",
        }
    }
}

/// A presigned URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Presigned {
    /// The whole URL.
    pub url: String,
    /// Its path and query, for a client that knows the node's address.
    pub path: String,
    /// When it stops working, in ms since the Unix epoch.
    pub expires_at_ms: u64,
}

/// Signs and checks presigned URLs with the node's secret.
#[derive(Clone)]
pub struct Presigner {
    secret: [u8; SECRET_BYTES],
    base_url: String,
}

impl std::fmt::Debug for Presigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Presigner").field("base_url", &self.base_url).finish_non_exhaustive()
    }
}

fn internal(what: impl std::fmt::Display, error: impl std::fmt::Display) -> Error {
    Error::new(ErrorCode::Internal, format!("{what}: {error}"))
}

fn random_secret() -> Result<[u8; SECRET_BYTES]> {
    let mut secret = [0_u8; SECRET_BYTES];
    getrandom::fill(&mut secret).map_err(|error| internal("no random bytes", error))?;
    Ok(secret)
}

/// The characters kept as they are in a key segment of a URL: RFC 3986's unreserved ones.
const SEGMENT: &percent_encoding::AsciiSet =
    &percent_encoding::NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');

/// `key` as the path of a URL: each segment percent-encoded.
pub fn encode_key(key: &str) -> String {
    key.split('/')
        .map(|segment| percent_encoding::utf8_percent_encode(segment, SEGMENT).to_string())
        .collect::<Vec<_>>()
        .join("/")
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes.iter().fold(String::with_capacity(bytes.len() * 2), |mut text, byte| {
        let _ = write!(text, "{byte:02x}");
        text
    })
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|at| text.get(at..at + 2).and_then(|pair| u8::from_str_radix(pair, 16).ok()))
        .collect()
}

impl Presigner {
    /// A signer whose secret is the file `path` (made with a new random secret when missing),
    /// for URLs under `base_url` (`http://host:port`).
    pub fn open(path: &Path, base_url: &str) -> Result<Self> {
        let secret = match std::fs::read(path) {
            Ok(bytes) => <[u8; SECRET_BYTES]>::try_from(bytes.as_slice()).map_err(|_| {
                Error::new(
                    ErrorCode::Internal,
                    format!(
                        "{} holds {} bytes, not the {SECRET_BYTES} of a blob URL secret: delete \
                         it to make a new one (URLs handed out stop working)",
                        path.display(),
                        bytes.len()
                    ),
                )
            })?,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                let secret = random_secret()?;
                write_secret(path, &secret).map_err(|error| {
                    internal(format_args!("cannot write {}", path.display()), error)
                })?;
                secret
            }
            Err(error) => {
                return Err(internal(format_args!("cannot read {}", path.display()), error));
            }
        };
        Ok(Self { secret, base_url: base_url.trim_end_matches('/').to_owned() })
    }

    /// A signer with a secret of this process only (a host without a node).
    pub fn ephemeral(base_url: &str) -> Result<Self> {
        Ok(Self { secret: random_secret()?, base_url: base_url.trim_end_matches('/').to_owned() })
    }

    /// The base of the URLs it signs.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The MAC of a request, fed with everything the signature covers (the expiry as the URL
    /// spells it, so another spelling of the same number does not verify).
    fn mac(
        &self,
        method: Method,
        scope: (&str, &str),
        key: &str,
        expires: &str,
    ) -> Result<Hmac<Sha256>> {
        let mut mac = <Hmac<Sha256> as hmac::Mac>::new_from_slice(&self.secret)
            .map_err(|error| internal("cannot key the URL signature", error))?;
        let signed = format!("{}\n{}\n{}\n{key}\n{expires}", method.as_str(), scope.0, scope.1);
        mac.update(signed.as_bytes());
        Ok(mac)
    }

    /// A URL that lets its holder `method` the blob `key` of `scope` for `ttl_ms` (0: the
    /// default) from `now_ms`.
    pub fn sign(
        &self,
        method: Method,
        scope: (&str, &str),
        key: &str,
        ttl_ms: u64,
        now_ms: u64,
    ) -> Result<Presigned> {
        blobs::check_key(key)?;
        let ttl_ms = match ttl_ms {
            0 => DEFAULT_TTL_MS,
            ttl if ttl > MAX_TTL_MS => {
                return Err(Error::new(
                    ErrorCode::InvalidArguments,
                    format!("a presigned URL lives at most {MAX_TTL_MS} ms (7 days), not {ttl}"),
                ));
            }
            ttl => ttl,
        };
        let expires_at_ms = now_ms.saturating_add(ttl_ms);
        let expires = expires_at_ms.to_string();
        let signature = hex(&self.mac(method, scope, key, &expires)?.finalize().into_bytes());
        let path = format!(
            "{PATH_PREFIX}/{}/{}/{}?expires={expires_at_ms}&signature={signature}",
            scope.0,
            scope.1,
            encode_key(key)
        );
        Ok(Presigned { url: format!("{}{path}", self.base_url), path, expires_at_ms })
    }

    /// Checks a request for the blob `key` of `scope` with the URL's `expires` and `signature`
    /// (as they came: text), made with `method` at `now_ms`.
    pub fn verify(
        &self,
        method: Method,
        scope: (&str, &str),
        key: &str,
        expires: &str,
        signature: &str,
        now_ms: u64,
    ) -> Result<()> {
        let refused = || {
            Error::new(
                ErrorCode::SignatureInvalid,
                "the URL's signature does not match it: it was changed, or it was signed for \
                 another method; ask for a new presigned URL",
            )
        };
        let given = unhex(signature).ok_or_else(refused)?;
        // Compared in constant time.
        self.mac(method, scope, key, expires)?.verify_slice(&given).map_err(|_| refused())?;
        let expires_at_ms: u64 = expires.parse().map_err(|_| refused())?;
        if now_ms > expires_at_ms {
            return Err(Error::new(
                ErrorCode::UrlExpired,
                format!(
                    "the URL expired {} s ago (at {expires_at_ms} ms since the Unix epoch); ask \
                     for a new presigned URL",
                    (now_ms - expires_at_ms) / 1000
                ),
            ));
        }
        Ok(())
    }
}

/// Writes a new secret: a temporary file of mode 0600, fsynced, renamed into place.
fn write_secret(path: &Path, secret: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    if let Some(folder) = path.parent() {
        std::fs::create_dir_all(folder)?;
    }
    let temporary = path.with_extension("key.tmp");
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut file = options.open(&temporary)?;
    file.write_all(secret)?;
    file.sync_all()?;
    std::fs::rename(&temporary, path)?;
    if let Some(folder) = path.parent() {
        std::fs::File::open(folder)?.sync_all()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SCOPE: (&str, &str) = ("acme", "default");

    fn query(url: &str, name: &str) -> String {
        let query = url.split_once('?').map_or("", |(_, query)| query);
        query
            .split('&')
            .find_map(|pair| pair.strip_prefix(&format!("{name}=")))
            .unwrap_or_default()
            .to_owned()
    }

    #[test]
    fn a_signed_url_verifies_until_it_expires() {
        let signer = Presigner::ephemeral("http://127.0.0.1:8080/").unwrap();
        let url = signer.sign(Method::Get, SCOPE, "a b/ü.txt", 1_000, 5_000).unwrap();
        assert_eq!(url.expires_at_ms, 6_000);
        assert!(url.url.starts_with("http://127.0.0.1:8080/api/v1/presigned/acme/default/a%20b/%C3%BC.txt?expires=6000&signature="), "{}", url.url);
        let (expires, signature) = (query(&url.url, "expires"), query(&url.url, "signature"));
        let check = |method, scope, key: &str, expires: &str, signature: &str, now| {
            signer.verify(method, scope, key, expires, signature, now).map_err(|error| error.code)
        };
        assert_eq!(check(Method::Get, SCOPE, "a b/ü.txt", &expires, &signature, 6_000), Ok(()));
        let expired = Err(ErrorCode::UrlExpired);
        assert_eq!(check(Method::Get, SCOPE, "a b/ü.txt", &expires, &signature, 6_001), expired);
        let tampered = Err(ErrorCode::SignatureInvalid);
        assert_eq!(check(Method::Put, SCOPE, "a b/ü.txt", &expires, &signature, 0), tampered);
        assert_eq!(
            check(Method::Get, ("acme", "other"), "a b/ü.txt", &expires, &signature, 0),
            tampered
        );
        assert_eq!(check(Method::Get, SCOPE, "a b/u.txt", &expires, &signature, 0), tampered);
        assert_eq!(check(Method::Get, SCOPE, "a b/ü.txt", "60000", &signature, 0), tampered);
        assert_eq!(check(Method::Get, SCOPE, "a b/ü.txt", "06000", &signature, 0), tampered);
        let mut flipped = signature.clone().into_bytes();
        flipped[0] = if flipped[0] == b'0' { b'1' } else { b'0' };
        let flipped = String::from_utf8(flipped).unwrap();
        assert_eq!(check(Method::Get, SCOPE, "a b/ü.txt", &expires, &flipped, 0), tampered);
        assert_eq!(check(Method::Get, SCOPE, "a b/ü.txt", &expires, "zz", 0), tampered);
        let other = Presigner::ephemeral("http://x").unwrap();
        let verified = other.verify(Method::Get, SCOPE, "a b/ü.txt", &expires, &signature, 0);
        assert_eq!(verified.map_err(|error| error.code), tampered);
    }

    #[test]
    fn lifetimes_and_methods_are_checked() {
        let signer = Presigner::ephemeral("http://x").unwrap();
        assert_eq!(
            signer.sign(Method::Get, SCOPE, "k", 0, 0).unwrap().expires_at_ms,
            DEFAULT_TTL_MS
        );
        let too_long = signer.sign(Method::Get, SCOPE, "k", MAX_TTL_MS + 1, 0).unwrap_err();
        assert_eq!(too_long.code, ErrorCode::InvalidArguments);
        assert_eq!(
            signer.sign(Method::Get, SCOPE, "a//b", 0, 0).unwrap_err().code,
            ErrorCode::InvalidArguments
        );
        assert_eq!(Method::parse("put").unwrap(), Method::Put);
        assert_eq!(Method::parse("DELETE").unwrap_err().code, ErrorCode::InvalidArguments);
    }

    #[test]
    fn the_secret_outlives_the_process_and_is_private() {
        let dir = std::env::temp_dir().join(format!("plexspaces-presign-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let path = dir.join("blobs.key");
        let first = Presigner::open(&path, "http://x").unwrap();
        let url = first.sign(Method::Get, SCOPE, "k", 1_000, 0).unwrap();
        let again = Presigner::open(&path, "http://x").unwrap();
        let (expires, signature) = (query(&url.url, "expires"), query(&url.url, "signature"));
        assert!(again.verify(Method::Get, SCOPE, "k", &expires, &signature, 10).is_ok());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        std::fs::write(&path, b"short").unwrap();
        assert_eq!(Presigner::open(&path, "http://x").unwrap_err().code, ErrorCode::Internal);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
