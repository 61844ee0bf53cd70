mod common;
use chain_tui::core::amount::Amount;
use common::*;

#[test]
fn mine_and_spend_end_to_end() {
    let mut t = TestChain::new();
    let alice = key(1);
    let bob = key(2);
    let first = t.mine(1, address(&alice));
    t.mine(t.params.coinbase_maturity, address(&alice));
    let block = t
        .chain
        .store()
        .read()
        .unwrap()
        .block(&first.hash())
        .unwrap()
        .unwrap();
    let cb = coinbase_of(&block);
    let tx = spend(
        t.params,
        &[(cb, &alice)],
        vec![
            pay(address(&bob), 10_0000_0000),
            pay(address(&alice), 39_9999_0000),
        ],
    );
    let tip = t.tip();
    let b = t.mine_on(&tip, address(&alice), vec![tx.clone()], Amount(10_000));
    assert_eq!(t.tip().hash(), b.hash());
    assert!(t.coin(&cb).is_none(), "spent coinbase left the UTXO set");
    let paid = chain_tui::core::tx::OutPoint {
        txid: tx.txid(),
        vout: 0,
    };
    assert_eq!(t.coin(&paid).unwrap().output.address, address(&bob));
}
