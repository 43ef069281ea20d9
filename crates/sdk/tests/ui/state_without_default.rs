use plexspaces_sdk::prelude::*;

struct Connection;

#[gen_server_actor]
struct Holder {
    connection: Connection,
}

fn main() {}
