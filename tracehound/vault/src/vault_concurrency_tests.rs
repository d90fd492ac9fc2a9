//! `key_for` does no file I/O under the index lock: concurrent creators of one signature
//! share one key (and one file), `max_keys` holds with creations in flight, a destroyed
//! key's file is never written again, and lookups go on while a key file is written.
//! Orderings are forced with the write hook and channels, never with timing.

use super::issue::Step;
use super::*;
use std::sync::atomic::AtomicBool;
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Barrier};
use std::thread;

fn meta(sig: &str, source: &str, scent: &str) -> KeyMeta {
    KeyMeta {
        signature: sig.into(),
        sources: vec![source.into()],
        scent_ids: vec![scent.into()],
    }
}

fn vault(max_keys: usize) -> (tempfile::TempDir, Vault) {
    let dir = tempfile::tempdir().unwrap();
    let v = Vault::open(dir.path().join("v"), max_keys).unwrap();
    (dir, v)
}

/// The key ids of the `.key` files on disk (sorted); panics on a leftover staging file.
fn key_files(v: &Vault) -> Vec<KeyId> {
    let mut ids: Vec<KeyId> = std::fs::read_dir(v.dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .map(|name| {
            assert!(!name.ends_with(".tmp"), "staging file left: {name}");
            KeyId::from_hex(name.strip_suffix(".key").unwrap()).unwrap()
        })
        .collect();
    ids.sort();
    ids
}

fn held(v: &Vault) -> Vec<KeyId> {
    let mut ids: Vec<KeyId> = v.signatures().into_iter().map(|(id, _)| id).collect();
    ids.sort();
    ids
}

/// Parks the first key file write after it is written and synced (before the index lock
/// is taken again): its key id is sent on the first channel, and it waits for the second.
fn park_first_write(v: &Vault) -> (Receiver<KeyId>, Sender<()>) {
    park_first(v, Step::Written)
}

/// Parks the first key file write reaching `at`, as [`park_first_write`].
fn park_first(v: &Vault, at: Step) -> (Receiver<KeyId>, Sender<()>) {
    let (reached_tx, reached_rx) = mpsc::channel();
    let (release_tx, release_rx) = mpsc::channel::<()>();
    let armed = AtomicBool::new(true);
    let chans = std::sync::Mutex::new((reached_tx, release_rx));
    v.set_write_hook(Some(Arc::new(move |id: &KeyId, step: Step| {
        if step == at && armed.swap(false, Ordering::SeqCst) {
            let chans = chans.lock().unwrap();
            chans.0.send(*id).unwrap();
            // A dropped sender (the test failed) releases too.
            let _ = chans.1.recv();
        }
    })));
    (reached_rx, release_tx)
}

/// A parked write holds no index lock (asserted before the test takes it, so a
/// regression fails instead of deadlocking).
fn assert_index_free(v: &Vault) {
    assert!(
        v.index.try_lock().is_some(),
        "the index lock is held over a file write"
    );
}

/// Removes the write hook when dropped: a worker that ends (or panics) before parking
/// drops the hook's sender, so a test waiting for it to park fails instead of hanging.
struct Unhook<'a>(&'a Vault);

impl Drop for Unhook<'_> {
    fn drop(&mut self) {
        self.0.set_write_hook(None);
    }
}

/// Spawns a worker expected to park in the write hook (see [`Unhook`]).
fn spawn_parking<'s, 'e, T: Send + 's>(
    s: &'s thread::Scope<'s, 'e>,
    v: &'e Vault,
    f: impl FnOnce() -> T + Send + 's,
) -> thread::ScopedJoinHandle<'s, T> {
    s.spawn(move || {
        let _unhook = Unhook(v);
        f()
    })
}

#[test]
fn concurrent_creators_of_one_signature_share_one_key_and_one_file() {
    const THREADS: usize = 8;
    const ROUNDS: usize = 10;
    let (_dir, v) = vault(100);
    for round in 0..ROUNDS {
        let sig = format!("spam:{round}");
        let barrier = Barrier::new(THREADS);
        let ids: Vec<KeyId> = thread::scope(|s| {
            let handles: Vec<_> = (0..THREADS)
                .map(|i| {
                    let (v, sig, barrier) = (&v, &sig, &barrier);
                    s.spawn(move || {
                        barrier.wait();
                        v.key_for(&meta(sig, &format!("10.0.0.{i}"), &format!("s{i}")))
                            .unwrap()
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert!(ids.iter().all(|id| *id == ids[0]), "round {round}: {ids:?}");
        // Every caller's metadata was recorded, also the losers'.
        let m = v.meta(&ids[0]).unwrap();
        assert_eq!((m.sources.len(), m.scent_ids.len()), (THREADS, THREADS));
        assert_eq!(v.find_signature(&sig), Some(ids[0]));
    }
    assert_eq!(key_files(&v), held(&v));
    assert_eq!(key_files(&v).len(), ROUNDS);
    let stats = v.stats();
    assert_eq!((stats.keys, stats.created), (ROUNDS as u64, ROUNDS as u64));
    // What is on disk is what the index holds: reopening agrees.
    let dir = v.dir().to_owned();
    drop(v);
    let v = Vault::open(&dir, 100).unwrap();
    assert_eq!(v.stats().keys, ROUNDS as u64);
}

#[test]
fn a_creator_that_lost_the_race_shreds_its_file_and_returns_the_winners_key() {
    let (_dir, v) = vault(10);
    let (reached, release) = park_first_write(&v);
    thread::scope(|s| {
        let release = release; // dropped on a failed assertion: the parked worker ends
        let loser = spawn_parking(s, &v, || {
            v.key_for(&meta("spam:x", "10.0.0.1", "s1")).unwrap()
        });
        let parked = reached.recv().unwrap();
        assert_index_free(&v);
        assert!(v.path_of(&parked).exists(), "parked after writing its file");
        let winner = v.key_for(&meta("spam:x", "10.0.0.2", "s2")).unwrap();
        assert_ne!(winner, parked);
        release.send(()).unwrap();
        assert_eq!(loser.join().unwrap(), winner);
        assert!(!v.path_of(&parked).exists(), "the loser's file is shredded");
        assert_eq!(key_files(&v), vec![winner]);
        let m = v.meta(&winner).unwrap();
        assert_eq!(
            m.sources,
            vec!["10.0.0.2".to_owned(), "10.0.0.1".to_owned()]
        );
    });
    let stats = v.stats();
    assert_eq!((stats.keys, stats.created), (1, 1));
}

#[test]
fn concurrent_creators_never_exceed_max_keys() {
    const MAX: usize = 3;
    const THREADS: usize = 8;
    for round in 0..5 {
        let (_dir, v) = vault(MAX);
        let barrier = Barrier::new(THREADS);
        let results: Vec<_> = thread::scope(|s| {
            let handles: Vec<_> = (0..THREADS)
                .map(|i| {
                    let (v, barrier) = (&v, &barrier);
                    s.spawn(move || {
                        barrier.wait();
                        v.key_for(&meta(&format!("spam:{i}"), "a", "b"))
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let made = results.iter().filter(|r| r.is_ok()).count();
        assert!(results
            .iter()
            .all(|r| matches!(r, Ok(_) | Err(VaultError::Full { max: MAX }))));
        assert_eq!(made, MAX, "round {round}: every free slot is used, no more");
        assert_eq!(key_files(&v).len(), MAX);
        assert_eq!(v.stats().keys, MAX as u64);
    }
}

#[test]
fn a_creation_in_flight_holds_its_slot_and_shares_it_with_its_signature() {
    let (_dir, v) = vault(1);
    let (reached, release) = park_first_write(&v);
    thread::scope(|s| {
        let release = release; // dropped on a failed assertion: the parked worker ends
        let first = spawn_parking(s, &v, || v.key_for(&meta("spam:x", "a", "1")).unwrap());
        reached.recv().unwrap();
        assert_index_free(&v);
        assert!(matches!(
            v.key_for(&meta("spam:other", "a", "1")),
            Err(VaultError::Full { max: 1 })
        ));
        // The same signature uses the slot reserved for it.
        let same = v.key_for(&meta("spam:x", "b", "2")).unwrap();
        release.send(()).unwrap();
        assert_eq!(first.join().unwrap(), same);
    });
    assert_eq!(key_files(&v).len(), 1);
    assert!(v.index.lock().pending.is_empty());
}

#[test]
fn concurrent_merge_and_destroy_never_leave_the_destroyed_key_on_disk() {
    let (_dir, v) = vault(1000);
    let barrier = Barrier::new(2);
    for i in 0..100 {
        let sig = format!("spam:{i}");
        let id = v.key_for(&meta(&sig, "10.0.0.1", "s1")).unwrap();
        let (merged, destroyed) = thread::scope(|s| {
            let m = s.spawn(|| {
                barrier.wait();
                v.key_for(&meta(&sig, &format!("10.1.0.{i}"), "s2"))
                    .unwrap()
            });
            let d = s.spawn(|| {
                barrier.wait();
                v.destroy(&id).unwrap()
            });
            (m.join().unwrap(), d.join().unwrap())
        });
        assert!(destroyed, "iteration {i}");
        assert!(
            !v.path_of(&id).exists(),
            "iteration {i}: destroyed key on disk"
        );
        assert!(
            v.meta(&id).is_none(),
            "iteration {i}: destroyed key indexed"
        );
        // The merge ran before the destroy (same id) or after it (a new key).
        if merged != id {
            assert_eq!(v.find_signature(&sig), Some(merged));
            assert!(v.destroy(&merged).unwrap());
        }
    }
    assert!(key_files(&v).is_empty());
    assert_eq!(v.stats().keys, 0);
}

#[test]
fn a_destroy_during_a_metadata_rewrite_shreds_the_rewritten_file() {
    let (_dir, v) = vault(10);
    let id = v.key_for(&meta("spam:x", "10.0.0.1", "s1")).unwrap();
    let (reached, release) = park_first_write(&v);
    thread::scope(|s| {
        let release = release; // dropped on a failed assertion: the parked worker ends
        let merge = spawn_parking(s, &v, || {
            v.key_for(&meta("spam:x", "10.0.0.2", "s2")).unwrap()
        });
        assert_eq!(reached.recv().unwrap(), id);
        assert_index_free(&v);
        let destroy = s.spawn(|| v.destroy(&id).unwrap());
        // The destroy forgets the key, then waits for the rewrite to finish.
        while v.meta(&id).is_some() && !destroy.is_finished() {
            thread::yield_now();
        }
        assert!(
            v.path_of(&id).exists(),
            "the rewrite is not shredded under it"
        );
        release.send(()).unwrap();
        assert_eq!(merge.join().unwrap(), id);
        assert!(destroy.join().unwrap());
    });
    assert!(key_files(&v).is_empty());
    assert!(v.find_source("10.0.0.2").is_empty(), "not installed either");
    assert_eq!(v.stats().keys, 0);
}

#[test]
fn a_destroy_before_a_pending_metadata_rewrite_is_not_undone_by_it() {
    // The rewrite has checked the key is held and read it, and is about to write: a
    // destroy now must not shred first and let the rewrite recreate the file.
    let (_dir, v) = vault(10);
    let id = v.key_for(&meta("spam:x", "10.0.0.1", "s1")).unwrap();
    let (reached, release) = park_first(&v, Step::Writing);
    thread::scope(|s| {
        let release = release; // dropped on a failed assertion: the parked worker ends
        let merge = spawn_parking(s, &v, || {
            v.key_for(&meta("spam:x", "10.0.0.2", "s2")).unwrap()
        });
        assert_eq!(reached.recv().unwrap(), id);
        assert_index_free(&v);
        let destroy = s.spawn(|| v.destroy(&id).unwrap());
        while v.meta(&id).is_some() && !destroy.is_finished() {
            thread::yield_now();
        }
        release.send(()).unwrap();
        assert_eq!(merge.join().unwrap(), id);
        assert!(destroy.join().unwrap());
    });
    assert!(
        key_files(&v).is_empty(),
        "the destroyed key's file was recreated"
    );
    assert!(v.meta(&id).is_none());
}

#[test]
fn a_merge_that_starts_after_a_destroy_writes_nothing() {
    let (_dir, v) = vault(10);
    let id = v.key_for(&meta("spam:x", "10.0.0.1", "s1")).unwrap();
    assert!(v.destroy(&id).unwrap());
    // A caller that looked the key up before the destroy, merging only now.
    assert_eq!(
        v.merge_into(id, &meta("spam:x", "10.0.0.2", "s2")).unwrap(),
        id
    );
    assert!(key_files(&v).is_empty());
    assert!(v.meta(&id).is_none());
}

#[test]
fn lookups_go_on_while_a_key_file_is_written() {
    let (_dir, v) = vault(10);
    let a = v.key_for(&meta("spam:a", "10.0.0.1", "s1")).unwrap();
    // A creation parked between writing its file and re-taking the index lock.
    let (reached, release) = park_first_write(&v);
    thread::scope(|s| {
        let release = release; // dropped on a failed assertion: the parked worker ends
        let create = spawn_parking(s, &v, || {
            v.key_for(&meta("spam:b", "10.0.0.2", "s2")).unwrap()
        });
        let b = reached.recv().unwrap();
        assert_index_free(&v);
        assert!(v.path_of(&b).exists());
        assert_eq!(v.find_signature("spam:a"), Some(a));
        assert_eq!(v.find_signature("spam:b"), None, "not installed yet");
        assert_eq!(v.find_source("10.0.0.1"), vec![(a, "spam:a".to_owned())]);
        assert_eq!(v.stats().keys, 1);
        release.send(()).unwrap();
        assert_eq!(create.join().unwrap(), b);
        assert_eq!(v.find_signature("spam:b"), Some(b));
    });
    // A metadata rewrite parked the same way: lookups and new keys go on; the new
    // source shows once it is installed.
    let (reached, release) = park_first_write(&v);
    thread::scope(|s| {
        let release = release; // dropped on a failed assertion: the parked worker ends
        let merge = spawn_parking(s, &v, || {
            v.key_for(&meta("spam:a", "10.0.0.3", "s3")).unwrap()
        });
        assert_eq!(reached.recv().unwrap(), a);
        assert_index_free(&v);
        assert!(v.find_source("10.0.0.3").is_empty());
        assert_eq!(v.find_scent("s1"), vec![(a, "spam:a".to_owned())]);
        let c = v.key_for(&meta("spam:c", "10.0.0.4", "s4")).unwrap();
        assert_eq!(v.find_signature("spam:c"), Some(c));
        release.send(()).unwrap();
        assert_eq!(merge.join().unwrap(), a);
    });
    assert_eq!(v.find_source("10.0.0.3"), vec![(a, "spam:a".to_owned())]);
    assert_eq!(v.stats().keys, 3);
    assert_eq!(key_files(&v), held(&v));
}
