//! `stats items` and `stats slabs` per size class (ringcache reported one class for all
//! sizes): items of different sizes land in different classes, the per-class figures
//! add up to the general ones, and the class ids are the ones metadump's `cls=` and
//! `stats cachedump <id>` use.

#[macro_use]
mod common;

use common::*;
use std::collections::HashMap;
use std::time::Duration;

type Classes = HashMap<u32, HashMap<String, u64>>;

/// `stats items` or `stats slabs` as class → field → value (and the global lines).
fn per_class(conn: &mut Client, group: &str) -> (Classes, HashMap<String, u64>) {
    let mut classes: Classes = HashMap::new();
    let mut global = HashMap::new();
    for (name, value) in stats_group(conn, group) {
        let value: u64 = value.parse().unwrap_or_else(|_| panic!("{name}={value}"));
        let parts: Vec<&str> = name.split(':').collect();
        match parts.as_slice() {
            ["items", class, field] | [class, field] => {
                classes
                    .entry(class.parse().expect("class id"))
                    .or_default()
                    .insert(field.to_string(), value);
            }
            _ => {
                global.insert(name, value);
            }
        }
    }
    (classes, global)
}

fn sum(classes: &Classes, field: &str) -> u64 {
    classes.values().map(|c| c[field]).sum()
}

/// The class metadump names for `key`.
fn class_of(conn: &mut Client, key: &str) -> u32 {
    conn.send(b"lru_crawler metadump all\r\n");
    let reply = conn.read_until("metadump", |b| b.ends_with(b"END\r\n").then_some(b.len()));
    let text = String::from_utf8(reply).unwrap();
    let line = text
        .lines()
        .find(|l| l.starts_with(&format!("key={key} ")))
        .unwrap_or_else(|| panic!("{key} not dumped"));
    line.split(' ')
        .find_map(|f| f.strip_prefix("cls="))
        .unwrap()
        .parse()
        .unwrap()
}

both_engines! {
    /// Sizes from 1 byte to 300 KB land in their own classes; each class's chunk holds
    /// its items; numbers and bytes add up; `cls=` and cachedump agree with them.
    fn items_land_in_classes_by_size(flavor) {
        let server = Server::start(flavor, &[]);
        let mut conn = server.connect();
        let sizes = [1usize, 100, 1000, 10_000, 60_000, 300_000];
        for (i, &len) in sizes.iter().enumerate() {
            for j in 0..3 {
                conn.set(&format!("s{i}_{j}"), &value_for(j, len));
            }
        }
        let (items, _) = per_class(&mut conn, "items");
        let (slabs, global) = per_class(&mut conn, "slabs");
        let general = conn.stats();
        assert_eq!(items.len(), sizes.len(), "{flavor}: one class per size: {items:?}");
        assert_eq!(sum(&items, "number"), 18);
        assert_eq!(sum(&items, "mem_requested"), stat_u64(&general, "bytes"));
        assert_eq!(sum(&slabs, "used_chunks"), 18);
        assert_eq!(global["active_slabs"], slabs.len() as u64);
        assert!(global["total_malloced"] >= 18);
        let mut ids: Vec<u32> = items.keys().copied().collect();
        ids.sort_unstable();
        assert!(ids.iter().all(|&id| (1..=63).contains(&id)), "memcdump asks 0 to 63: {ids:?}");
        for (i, &len) in sizes.iter().enumerate() {
            let class = class_of(&mut conn, &format!("s{i}_0"));
            assert_eq!(class, ids[i], "{flavor}: size {len}: classes ascend with size");
            let c = &slabs[&class];
            assert!(c["chunk_size"] as usize >= len, "{flavor}: {len} in {c:?}");
            assert_eq!(c["used_chunks"], 3);
            assert_eq!(c["free_chunks"], c["total_chunks"] - 3);
            assert_eq!(items[&class]["number_cold"], 3, "one LRU segment: all cold");
            assert_eq!(items[&class]["number_hot"], 0);
            conn.send(format!("stats cachedump {class} 0\r\n").as_bytes());
            let dump = conn.read_until("cachedump", |b| b.ends_with(b"END\r\n").then_some(b.len()));
            let lines = String::from_utf8(dump).unwrap();
            assert_eq!(lines.lines().filter(|l| l.starts_with(&format!("ITEM s{i}_"))).count(), 3, "{lines}");
        }
        conn.get("s0_0");
        let (items, _) = per_class(&mut conn, "items");
        assert_eq!(items[&ids[0]]["hits_to_cold"], 1);
    }
}

both_engines! {
    /// Evictions, the crawler's reclaims and the age of the oldest item are counted per
    /// class, and add up to the general figures.
    fn evictions_reclaims_and_age_per_class(flavor) {
        let server = Server::start(flavor, &["-m", "8", "-I", "64k"]);
        let mut conn = server.connect();
        for i in 0..4000 {
            conn.set(&format!("big{i}"), &value_for(i, 4000));
        }
        let mut short = b"set short 0 1 4000 noreply\r\n".to_vec();
        short.extend_from_slice(&value_for(1, 4000));
        short.extend_from_slice(b"\r\n");
        conn.send(&short);
        // An item with an expiry has a longer record than one without (its header holds
        // the expiry), so its class is watched through a twin: same key length and value,
        // an expiry that does not come.
        let mut twin = b"set other 0 1000 4000 noreply\r\n".to_vec();
        twin.extend_from_slice(&value_for(2, 4000));
        twin.extend_from_slice(b"\r\n");
        conn.send(&twin);
        conn.roundtrip(b"mn\r\n", b"MN\r\n");
        let (items, _) = per_class(&mut conn, "items");
        let general = conn.stats();
        assert!(stat_u64(&general, "evictions") > 0);
        assert_eq!(sum(&items, "evicted"), stat_u64(&general, "evictions"), "{flavor}");
        assert_eq!(sum(&items, "evicted_unfetched"), stat_u64(&general, "evicted_unfetched"));
        let class = class_of(&mut conn, "other");
        let (reclaimed, items) = {
            let deadline = std::time::Instant::now() + Duration::from_secs(10);
            loop {
                let (items, _) = per_class(&mut conn, "items");
                let c = &items[&class];
                if (c["crawler_reclaimed"] >= 1 && c["age"] >= 2) || std::time::Instant::now() > deadline {
                    break (c["crawler_reclaimed"], items);
                }
                std::thread::sleep(POLL_INTERVAL);
            }
        };
        assert_eq!(reclaimed, 1, "{flavor}: the expired item of that class: {items:?}");
        assert!(items[&class]["age"] >= 2, "{flavor}: {items:?}");
        assert!(items[&class]["crawler_items_checked"] >= 1);
        let general = conn.stats();
        assert_eq!(sum(&items, "crawler_reclaimed"), stat_u64(&general, "crawler_reclaimed"));
    }
}
