//! Key discovery: the private keys on each logged-in token, their public halves (from a
//! public key object, or a certificate when the token holds only that) and their SSH
//! blobs.

use super::*;

/// Every private signing key on the `slots`' tokens, with its public half.
pub(super) fn discover(ctx: &Pkcs11, slots: &[Slot]) -> Result<Vec<KeyEntry>, ModuleError> {
    let mut out = Vec::new();
    for &slot in slots {
        let info = ctx.get_token_info(slot).ok();
        let token = info
            .as_ref()
            .map(|i| i.label().trim().to_string())
            .unwrap_or_default();
        let id = info
            .as_ref()
            .map(|i| token_id(i.serial_number(), i.label()))
            .unwrap_or_default();
        let session = ctx
            .open_ro_session(slot)
            .map_err(|e| from_ck("C_OpenSession", e))?;
        let privs = session
            .find_objects(&[
                Attribute::Class(ObjectClass::PRIVATE_KEY),
                Attribute::Sign(true),
            ])
            .map_err(|e| from_ck("C_FindObjects", e))?;
        for handle in privs {
            if let Some(mut entry) = describe(&session, slot, handle, &token) {
                entry.token = id.clone();
                if !out.iter().any(|k: &KeyEntry| k.blob == entry.blob) {
                    out.push(entry);
                }
            }
        }
    }
    Ok(out)
}

/// One private key: its type, label and public blob (from its public key object with the
/// same `CKA_ID`, or, for RSA, the modulus on the private object). Keys of other types, or
/// without a readable public half, are skipped.
fn describe(session: &Session, slot: Slot, handle: ObjectHandle, token: &str) -> Option<KeyEntry> {
    let attrs = session
        .get_attributes(
            handle,
            &[
                AttributeType::KeyType,
                AttributeType::Id,
                AttributeType::Label,
            ],
        )
        .ok()?;
    let (mut key_type, mut id, mut label) = (None, Vec::new(), String::new());
    for a in attrs {
        match a {
            Attribute::KeyType(t) => key_type = Some(t),
            Attribute::Id(v) => id = v,
            Attribute::Label(v) => label = String::from_utf8_lossy(&v).into_owned(),
            _ => {}
        }
    }
    let key_type = key_type?;
    let (kind, blob) = match public_half(session, handle, key_type, &id) {
        Some(found) => found,
        // No public key object: the key's X.509 certificate (same CKA_ID) names it.
        None => certificate_key(session, &id)
            .filter(|(kind, _)| (key_type == KeyType::RSA) == (*kind == KeyKind::Rsa))?,
    };
    let label = if label.is_empty() {
        format!("pkcs11:{token}")
    } else {
        format!("pkcs11:{token}/{label}")
    };
    Some(KeyEntry {
        blob,
        label,
        token: String::new(),
        slot,
        handle,
        kind,
    })
}

/// The SSH blob of a private key from its public key object (same `CKA_ID`), or for RSA
/// from the modulus the private object carries too.
fn public_half(
    session: &Session,
    handle: ObjectHandle,
    key_type: KeyType,
    id: &[u8],
) -> Option<(KeyKind, Vec<u8>)> {
    let public = session
        .find_objects(&[
            Attribute::Class(ObjectClass::PUBLIC_KEY),
            Attribute::Id(id.to_vec()),
        ])
        .ok()
        .and_then(|v| v.into_iter().next());
    if key_type == KeyType::RSA {
        let from = public.unwrap_or(handle);
        let attrs = session
            .get_attributes(
                from,
                &[AttributeType::Modulus, AttributeType::PublicExponent],
            )
            .ok()?;
        let (mut n, mut e) = (None, None);
        for a in attrs {
            match a {
                Attribute::Modulus(v) => n = Some(v),
                Attribute::PublicExponent(v) => e = Some(v),
                _ => {}
            }
        }
        return Some((KeyKind::Rsa, sshenc::rsa_blob(&n?, &e?)));
    }
    if key_type != KeyType::EC && key_type != KeyType::EC_EDWARDS {
        return None;
    }
    let attrs = session
        .get_attributes(public?, &[AttributeType::EcParams, AttributeType::EcPoint])
        .ok()?;
    let (mut params, mut point) = (None, None);
    for a in attrs {
        match a {
            Attribute::EcParams(v) => params = Some(v),
            Attribute::EcPoint(v) => point = Some(v),
            _ => {}
        }
    }
    let kind = KeyKind::from_ec_params(&params?)?;
    let point = point?;
    Some((
        kind,
        sshenc::ec_blob(kind, sshenc::unwrap_ec_point(kind, &point)?)?,
    ))
}

/// The subject key of the X.509 certificate with `CKA_ID` `id`, if the token has one.
fn certificate_key(session: &Session, id: &[u8]) -> Option<(KeyKind, Vec<u8>)> {
    let cert = session
        .find_objects(&[
            Attribute::Class(ObjectClass::CERTIFICATE),
            Attribute::Id(id.to_vec()),
        ])
        .ok()?
        .into_iter()
        .next()?;
    let value = session
        .get_attributes(cert, &[AttributeType::Value])
        .ok()?
        .into_iter()
        .find_map(|a| match a {
            Attribute::Value(v) => Some(v),
            _ => None,
        })?;
    crate::x509::public_key(&value)
}
