use lvs_userspace::datapath::{Datapath, Options};
#[test]
fn loads() {
    let mut dp = Datapath::open(&Options::ephemeral()).expect("open");
    let _ = dp.program().unwrap();
    println!("{:?}", dp.settings().unwrap());
}
