//! The text wrapping of an OpenSSH private key file: BEGIN line, base64, END line.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use zeroize::Zeroizing;

use super::KeyFileError;

const BEGIN: &str = "-----BEGIN OPENSSH PRIVATE KEY-----";
const END: &str = "-----END OPENSSH PRIVATE KEY-----";

/// Decodes the base64 body between the BEGIN and END lines.
///
/// Whitespace (including `\r` of files edited on Windows) is ignored inside the body, and
/// blank space is allowed around the armor, but nothing else: text before BEGIN or after
/// END is refused, so a concatenation of two keys is not silently read as the first. The
/// decoded bytes hold the (possibly unencrypted) private key, so they are zeroized on drop.
pub(crate) fn decode(text: &str) -> Result<Zeroizing<Vec<u8>>, KeyFileError> {
    let inner = text
        .trim()
        .strip_prefix(BEGIN)
        .and_then(|rest| rest.strip_suffix(END))
        .ok_or(KeyFileError::Armor)?;
    // Nothing may sit on the BEGIN line after the marker, and no second armor may hide
    // inside the body; both would otherwise surface as confusing base64 errors.
    if !inner.starts_with(['\n', '\r']) || inner.contains("-----") {
        return Err(KeyFileError::Armor);
    }
    // Both buffers are sized up front so that they never reallocate and leave unzeroized
    // copies of key material behind.
    let mut body = Zeroizing::new(String::with_capacity(inner.len()));
    body.extend(inner.chars().filter(|c| !c.is_ascii_whitespace()));
    let mut out = Zeroizing::new(Vec::with_capacity(base64::decoded_len_estimate(body.len())));
    STANDARD
        .decode_vec(body.as_bytes(), &mut out)
        .map_err(|_| KeyFileError::Base64)?;
    Ok(out)
}
