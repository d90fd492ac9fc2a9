//! One PKCS#11 module inside the helper: login, key discovery, signing.
//!
//! The module is initialized once per helper process (a module that must be
//! re-initialized to see a new token is handled by the agent restarting the helper).
//! Each signing worker thread owns its sessions (`Session` is `Send`, not `Sync`), opened
//! lazily per slot: PKCS#11 login state belongs to the application and token, so a session
//! opened after `C_Login` is already logged in. A session or object handle that goes stale
//! mid-run (token removed and re-inserted, module reset) is retried once after a refresh
//! of the key table, and refreshes are throttled so a burst of failures makes one.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::mechanism::eddsa::{EddsaParams, EddsaSignatureScheme};
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, SessionState, UserType};
use cryptoki::slot::Slot;
use cryptoki::types::RawAuthPin;
use secrecy::SecretBox;
use std::sync::{Mutex, RwLock};
use zeroize::Zeroizing;

use crate::sshenc::{self, KeyKind};
use crate::wire::{token_id, ErrorCode, TokenKey};

/// Least time between two refreshes of the key table.
mod discover;
use discover::discover;

const REFRESH_THROTTLE: Duration = Duration::from_millis(250);

/// A failure, as reported to the agent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ModuleError {
    /// Its class.
    pub code: ErrorCode,
    /// Detail for logs (never a secret).
    pub message: String,
}

impl ModuleError {
    fn new(code: ErrorCode, message: impl Into<String>) -> ModuleError {
        ModuleError {
            code,
            message: message.into(),
        }
    }
}

fn rv(e: &CkError) -> Option<RvError> {
    match e {
        CkError::Pkcs11(rv, _) => Some(*rv),
        _ => None,
    }
}

fn from_ck(what: &str, e: CkError) -> ModuleError {
    let code = match rv(&e) {
        Some(RvError::PinIncorrect) => ErrorCode::PinIncorrect,
        Some(RvError::PinLocked) => ErrorCode::PinLocked,
        Some(
            RvError::TokenNotPresent
            | RvError::DeviceRemoved
            | RvError::SlotIdInvalid
            | RvError::TokenNotRecognized,
        ) => ErrorCode::TokenAbsent,
        Some(RvError::KeyHandleInvalid | RvError::ObjectHandleInvalid) => ErrorCode::KeyNotFound,
        Some(RvError::UserNotLoggedIn) => ErrorCode::NotLoggedIn,
        _ => ErrorCode::Device,
    };
    ModuleError::new(code, format!("{what}: {e}"))
}

/// The binding identity (`token_id`) of the token in `slot`, if it can be read.
fn slot_token_id(ctx: &Pkcs11, slot: Slot) -> Option<String> {
    let info = ctx.get_token_info(slot).ok()?;
    Some(token_id(info.serial_number(), info.label()))
}

/// The class of a `C_Login` failure. Fail closed: anything but an absent token is a
/// login failure that may have counted a PIN try, so the PIN is never tried again.
fn login_code(rv: Option<RvError>) -> ErrorCode {
    match rv {
        Some(RvError::PinIncorrect) => ErrorCode::PinIncorrect,
        Some(RvError::PinLocked) => ErrorCode::PinLocked,
        Some(
            RvError::TokenNotPresent
            | RvError::DeviceRemoved
            | RvError::SlotIdInvalid
            | RvError::TokenNotRecognized,
        ) => ErrorCode::TokenAbsent,
        _ => ErrorCode::LoginFailed,
    }
}

/// Errors after which a fresh session and key table may succeed.
fn is_stale(e: &CkError) -> bool {
    matches!(
        rv(e),
        Some(
            RvError::SessionHandleInvalid
                | RvError::SessionClosed
                | RvError::KeyHandleInvalid
                | RvError::ObjectHandleInvalid
                | RvError::UserNotLoggedIn
                | RvError::TokenNotPresent
                | RvError::DeviceRemoved
                | RvError::SlotIdInvalid
        )
    )
}

#[derive(Debug, Clone)]
struct KeyEntry {
    blob: Vec<u8>,
    label: String,
    /// `token_id` of the key's token.
    token: String,
    slot: Slot,
    handle: ObjectHandle,
    kind: KeyKind,
}

#[derive(Default)]
struct State {
    ctx: Option<Pkcs11>,
    /// Bumped by every refresh: worker sessions of an older generation are reopened.
    generation: u64,
    /// The PIN, kept only after the token accepted it.
    pin: Option<Zeroizing<Vec<u8>>>,
    /// The tokens (`token_id`) the PIN is bound to: only these are ever logged in.
    bound: Vec<String>,
    keys: Vec<KeyEntry>,
}

/// A loaded module.
pub struct Module {
    path: PathBuf,
    state: RwLock<State>,
    last_refresh: Mutex<Option<Instant>>,
    /// One logged-in session per token, kept open for the life of the login.
    logins: Mutex<HashMap<u64, Session>>,
}

/// The sessions one worker thread owns: slot id → (generation, session).
#[derive(Default)]
pub struct WorkerSessions {
    map: HashMap<u64, (u64, Session)>,
}

fn raw_pin(pin: &[u8]) -> RawAuthPin {
    SecretBox::new(Box::new(pin.to_vec()))
}

impl Module {
    /// A module at `path`, not yet loaded.
    pub fn new(path: &Path) -> Module {
        Module {
            path: path.to_path_buf(),
            state: RwLock::new(State::default()),
            last_refresh: Mutex::new(None),
            logins: Mutex::new(HashMap::new()),
        }
    }

    fn context(&self, state: &mut State) -> Result<Pkcs11, ModuleError> {
        if let Some(ctx) = &state.ctx {
            return Ok(ctx.clone());
        }
        let ctx = Pkcs11::new(&self.path)
            .map_err(|e| ModuleError::new(ErrorCode::Device, format!("load module: {e}")))?;
        ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK))
            .map_err(|e| from_ck("C_Initialize", e))?;
        state.ctx = Some(ctx.clone());
        Ok(ctx)
    }

    /// Logs in to every token present with `pin` and lists their keys. A token whose PIN
    /// is locked, or on its final try, is not tried: a login that fails there would lock
    /// it. A refused PIN is reported and not kept, so it is never tried again.
    ///
    /// With `tokens` empty (the first login) the PIN is bound to every token present;
    /// otherwise only tokens in `tokens` are logged in and any other is left alone.
    pub fn login(&self, pin: &[u8], tokens: &[String]) -> Result<Vec<TokenKey>, ModuleError> {
        let mut state = self.state.write().unwrap_or_else(|p| p.into_inner());
        let ctx = self.context(&mut state)?;
        let all = ctx
            .get_slots_with_initialized_token()
            .map_err(|e| from_ck("C_GetSlotList", e))?;
        let mut slots = Vec::new();
        let mut bound = Vec::new();
        for slot in all {
            let Some(id) = slot_token_id(&ctx, slot) else {
                continue;
            };
            if tokens.is_empty() || tokens.contains(&id) {
                slots.push(slot);
                bound.push(id);
            }
        }
        if slots.is_empty() {
            return Err(ModuleError::new(ErrorCode::TokenAbsent, "no token present"));
        }
        for slot in &slots {
            login_slot(&ctx, *slot, pin, &self.logins)?;
        }
        state.bound = if tokens.is_empty() {
            bound
        } else {
            tokens.to_vec()
        };
        state.pin = Some(Zeroizing::new(pin.to_vec()));
        state.keys = discover(&ctx, &slots)?;
        state.generation += 1;
        Ok(listing(&state.keys))
    }

    /// Re-reads the tokens present and their keys. A token that came back is logged in
    /// again with the PIN that worked before. With no PIN accepted yet: `NotLoggedIn`.
    pub fn list(&self) -> Result<Vec<TokenKey>, ModuleError> {
        let mut state = self.state.write().unwrap_or_else(|p| p.into_inner());
        self.refresh_locked(&mut state)?;
        Ok(listing(&state.keys))
    }

    fn refresh_locked(&self, state: &mut State) -> Result<(), ModuleError> {
        let Some(pin) = state.pin.clone() else {
            return Err(ModuleError::new(
                ErrorCode::NotLoggedIn,
                "no PIN accepted yet",
            ));
        };
        let ctx = self.context(state)?;
        let slots = match ctx.get_slots_with_initialized_token() {
            Ok(s) => s,
            Err(e) => {
                state.keys.clear();
                return Err(from_ck("C_GetSlotList", e));
            }
        };
        let mut present = Vec::new();
        for slot in slots {
            // A token the PIN is not bound to (inserted later, another token) is never
            // offered the PIN; it is skipped without touching the PIN.
            if !slot_token_id(&ctx, slot).is_some_and(|id| state.bound.contains(&id)) {
                continue;
            }
            match login_slot(&ctx, slot, &pin, &self.logins) {
                Ok(()) => present.push(slot),
                Err(e) if matches!(e.code, ErrorCode::PinIncorrect | ErrorCode::LoginFailed) => {
                    // The token now wants another PIN: forget ours rather than retry it.
                    state.pin = None;
                    state.keys.clear();
                    return Err(e);
                }
                // A token going away while we look: leave it out this time.
                Err(_) => {}
            }
        }
        let keys = discover(&ctx, &present).unwrap_or_default();
        if keys
            .iter()
            .map(|k| (&k.blob, k.handle))
            .ne(state.keys.iter().map(|k| (&k.blob, k.handle)))
        {
            state.generation += 1;
        }
        state.keys = keys;
        Ok(())
    }

    /// Refreshes the key table unless another thread did within [`REFRESH_THROTTLE`].
    fn refresh_throttled(&self) {
        let mut last = self.last_refresh.lock().unwrap_or_else(|p| p.into_inner());
        if last.is_some_and(|t| t.elapsed() < REFRESH_THROTTLE) {
            return;
        }
        let mut state = self.state.write().unwrap_or_else(|p| p.into_inner());
        let _ = self.refresh_locked(&mut state);
        state.generation += 1;
        *last = Some(Instant::now());
    }

    /// Signs `data` with the key whose blob is `blob`, using `sessions` (the calling
    /// worker's own). Stale sessions or handles are retried once after a refresh.
    pub fn sign(
        &self,
        sessions: &mut WorkerSessions,
        blob: &[u8],
        data: &[u8],
        flags: u32,
    ) -> Result<Vec<u8>, ModuleError> {
        match self.try_sign(sessions, blob, data, flags) {
            Err(Retry::Stale(e)) => {
                tracing_stale(&e);
                sessions.map.clear();
                self.refresh_throttled();
                self.try_sign(sessions, blob, data, flags)
                    .map_err(Retry::into_error)
            }
            other => other.map_err(Retry::into_error),
        }
    }

    fn try_sign(
        &self,
        sessions: &mut WorkerSessions,
        blob: &[u8],
        data: &[u8],
        flags: u32,
    ) -> Result<Vec<u8>, Retry> {
        let (key, ctx, generation) = {
            let state = self.state.read().unwrap_or_else(|p| p.into_inner());
            let Some(ctx) = state.ctx.clone() else {
                return Err(Retry::Final(ModuleError::new(
                    ErrorCode::NotLoggedIn,
                    "module not logged in",
                )));
            };
            let Some(key) = state.keys.iter().find(|k| k.blob == blob).cloned() else {
                let code = if state.keys.is_empty() {
                    ErrorCode::TokenAbsent
                } else {
                    ErrorCode::KeyNotFound
                };
                return Err(Retry::Final(ModuleError::new(
                    code,
                    "key not on any present token",
                )));
            };
            (key, ctx, state.generation)
        };
        let slot_id = key.slot.id();
        let fresh = matches!(sessions.map.get(&slot_id), Some((g, _)) if *g == generation);
        if !fresh {
            sessions.map.remove(&slot_id);
            let session = ctx.open_ro_session(key.slot).map_err(|e| {
                if is_stale(&e) {
                    Retry::Stale(e)
                } else {
                    Retry::Final(from_ck("C_OpenSession", e))
                }
            })?;
            sessions.map.insert(slot_id, (generation, session));
        }
        let Some((_, session)) = sessions.map.get(&slot_id) else {
            return Err(Retry::Final(ModuleError::new(
                ErrorCode::Device,
                "no session",
            )));
        };
        let (input, algorithm) = sshenc::sign_input(key.kind, data, flags);
        let mechanism = match key.kind {
            KeyKind::Rsa => Mechanism::RsaPkcs,
            KeyKind::P256 | KeyKind::P384 | KeyKind::P521 => Mechanism::Ecdsa,
            KeyKind::Ed25519 => Mechanism::Eddsa(EddsaParams::new(EddsaSignatureScheme::Pure)),
        };
        match session.sign(&mechanism, key.handle, &input) {
            Ok(raw) => sshenc::ssh_signature(key.kind, algorithm, &raw).ok_or_else(|| {
                Retry::Final(ModuleError::new(
                    ErrorCode::Device,
                    "token returned a malformed signature",
                ))
            }),
            Err(e) => {
                sessions.map.remove(&slot_id);
                if is_stale(&e) {
                    Err(Retry::Stale(e))
                } else {
                    Err(Retry::Final(from_ck("C_Sign", e)))
                }
            }
        }
    }
}

fn tracing_stale(e: &CkError) {
    eprintln!(
        "secretivex-pkcs11-helper: stale session or handle ({e}); refreshing and retrying once"
    );
}

enum Retry {
    Stale(CkError),
    Final(ModuleError),
}

impl Retry {
    fn into_error(self) -> ModuleError {
        match self {
            Retry::Stale(e) => from_ck("C_Sign after refresh", e),
            Retry::Final(e) => e,
        }
    }
}

fn listing(keys: &[KeyEntry]) -> Vec<TokenKey> {
    keys.iter()
        .map(|k| TokenKey {
            blob: k.blob.clone(),
            label: k.label.clone(),
            token: k.token.clone(),
        })
        .collect()
}

/// Logs in to one slot's token, unless its PIN is locked or on its final try. The login
/// session is kept in `keep` (closing a token's last session logs the application out),
/// and reused while it is still logged in.
fn login_slot(
    ctx: &Pkcs11,
    slot: Slot,
    pin: &[u8],
    keep: &Mutex<HashMap<u64, Session>>,
) -> Result<(), ModuleError> {
    let mut keep = keep.lock().unwrap_or_else(|p| p.into_inner());
    let logged_in = |s: &Session| {
        s.get_session_info().is_ok_and(|i| {
            matches!(
                i.session_state(),
                SessionState::RoUser | SessionState::RwUser
            )
        })
    };
    if keep.get(&slot.id()).is_some_and(logged_in) {
        return Ok(());
    }
    keep.remove(&slot.id());
    let info = ctx
        .get_token_info(slot)
        .map_err(|e| from_ck("C_GetTokenInfo", e))?;
    if info.user_pin_locked() {
        return Err(ModuleError::new(
            ErrorCode::PinLocked,
            "the token's user PIN is locked",
        ));
    }
    let session = ctx
        .open_ro_session(slot)
        .map_err(|e| from_ck("C_OpenSession", e))?;
    if !logged_in(&session) {
        if info.user_pin_final_try() {
            return Err(ModuleError::new(
                ErrorCode::PinLocked,
                "the token's user PIN is on its final try; not trying it",
            ));
        }
        match session.login_with_raw(UserType::User, &raw_pin(pin)) {
            Ok(()) | Err(CkError::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => {}
            Err(e) => {
                let code = login_code(rv(&e));
                return Err(ModuleError::new(code, format!("C_Login: {e}")));
            }
        }
    }
    keep.insert(slot.id(), session);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn login_failures_other_than_an_absent_token_are_fatal() {
        for (rv, code) in [
            (RvError::PinIncorrect, ErrorCode::PinIncorrect),
            (RvError::PinLocked, ErrorCode::PinLocked),
            (RvError::PinInvalid, ErrorCode::LoginFailed),
            (RvError::PinLenRange, ErrorCode::LoginFailed),
            (RvError::PinExpired, ErrorCode::LoginFailed),
            (RvError::GeneralError, ErrorCode::LoginFailed),
            (RvError::FunctionFailed, ErrorCode::LoginFailed),
            (RvError::DeviceError, ErrorCode::LoginFailed),
            (RvError::TokenNotPresent, ErrorCode::TokenAbsent),
            (RvError::DeviceRemoved, ErrorCode::TokenAbsent),
        ] {
            assert_eq!(login_code(Some(rv)), code, "{rv:?}");
            assert_eq!(code.is_fatal_login(), code != ErrorCode::TokenAbsent);
        }
        assert_eq!(login_code(None), ErrorCode::LoginFailed);
        assert!(ErrorCode::Device.is_fatal_login());
    }
}
