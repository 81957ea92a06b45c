//! Controller tests without a cluster: the bucket and entry controllers against a scripted
//! apiserver ([`fake_apiserver`]), for answers a real apiserver gives only by accident
//! (a 500 on a status write, a 409 from a concurrent writer, a refused finalizer patch),
//! and a departing resource's cleanup up to where it would ask NATS.
//! NATS is a connection that never comes up (a closed loopback port): the reconcile
//! then reports "not connected" without waiting, which is the status these tests write.

mod bucket_cleanup;
mod bucket_failures;
mod entry_finalizers;
mod fake_apiserver;
