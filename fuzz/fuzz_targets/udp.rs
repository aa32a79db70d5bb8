#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| ringcache_fuzz_check::check_udp(data));
