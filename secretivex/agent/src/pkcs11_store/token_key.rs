//! A token key as the key store sees it: signing goes through the module's session
//! permits and its helper process.

use std::sync::Weak;

use secretivex_pkcs11::wire::{ErrorCode, HelperReply, HelperRequest};

use super::Provider;
use crate::keystore::{ExternalKey, ExternalSignError, SignFuture};
use crate::pkcs11_helper::HelperError;

/// A token key as the key store sees it.
pub(super) struct TokenKeyHandle {
    pub(super) provider: Weak<Provider>,
    pub(super) blob: Vec<u8>,
    pub(super) key_type: &'static str,
}

impl ExternalKey for TokenKeyHandle {
    fn store(&self) -> &'static str {
        "pkcs11"
    }

    fn key_type(&self) -> &'static str {
        self.key_type
    }

    fn instance(&self) -> usize {
        // The provider allocation: a re-added module is a new provider. The weak
        // reference keeps the allocation, so the address is not reused meanwhile.
        self.provider.as_ptr() as *const () as usize
    }

    fn sign(&self, data: Vec<u8>, flags: u32) -> SignFuture {
        let provider = self.provider.clone();
        let blob = self.blob.clone();
        Box::pin(async move {
            let p = provider
                .upgrade()
                .ok_or_else(|| ExternalSignError::Unavailable("PKCS#11 module removed".into()))?;
            let acquire = p.permits.acquire();
            let permit = match p.settings.sign_timeout {
                Some(limit) => tokio::time::timeout(limit, acquire)
                    .await
                    .map_err(|_| ExternalSignError::Timeout(limit))?,
                None => acquire.await,
            };
            let _permit = permit.map_err(|_| ExternalSignError::Unavailable("closed".into()))?;
            let helper = p
                .helper
                .lock()
                .clone()
                .filter(|h| !h.is_dead())
                .ok_or_else(|| {
                    ExternalSignError::Unavailable("PKCS#11 helper is restarting".into())
                })?;
            let request = HelperRequest::Sign {
                key_blob: blob,
                data,
                flags,
            };
            match helper.request(&request, p.settings.reply_timeout).await {
                Ok(HelperReply::Signature(sig)) => Ok(sig),
                Ok(HelperReply::Error { code, message }) => {
                    if matches!(code, ErrorCode::TokenAbsent | ErrorCode::KeyNotFound) {
                        // Look at the token now rather than at the next poll.
                        p.wake.notify_one();
                        return Err(ExternalSignError::Unavailable(format!(
                            "{}: {message}",
                            code.as_str()
                        )));
                    }
                    Err(ExternalSignError::Failed(format!(
                        "{}: {message}",
                        code.as_str()
                    )))
                }
                Ok(_) => Err(ExternalSignError::Failed("unexpected helper reply".into())),
                Err(HelperError::Timeout(limit)) => {
                    // A hung module: a fresh helper is the only way out.
                    tracing::warn!(module = %p.id, ?limit, "PKCS#11 helper hung; restarting it");
                    helper.kill();
                    p.wake.notify_one();
                    Err(ExternalSignError::Unavailable("PKCS#11 helper hung".into()))
                }
                Err(HelperError::Gone) => {
                    p.wake.notify_one();
                    Err(ExternalSignError::Unavailable(
                        "PKCS#11 helper exited".into(),
                    ))
                }
            }
        })
    }
}
