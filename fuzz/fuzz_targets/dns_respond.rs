//! The key-zone responder's input side: hickory-proto's `Message::from_vec` on arbitrary
//! query bytes and `Snapshot::build` on the names found in them.
#![no_main]

use hickory_proto::op::Message;
use libfuzzer_sys::fuzz_target;
use sesame_dns::responder::Snapshot;

fuzz_target!(|data: &[u8]| {
    let Some((&n, rest)) = data.split_first() else {
        return;
    };
    let (zone, query) = rest.split_at(usize::from(n).min(rest.len()));
    let zone = String::from_utf8_lossy(zone);
    let keys = vec![(
        "tokentokentokentokentokentoken12".to_owned(),
        vec![0x30; 294],
    )];
    let _ = Snapshot::build(&zone, &keys, 1);
    if let Ok(message) = Message::from_vec(query) {
        for q in &message.queries {
            let _ = Snapshot::build(&q.name().to_ascii(), &keys, 1);
        }
    }
});
