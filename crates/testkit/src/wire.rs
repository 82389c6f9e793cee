//! The reference the Report API's bytes are held to: an entry written field by field, in the
//! order of the API's schema, every string by `serde_json`, payer details only when given. Plain
//! on purpose, sharing nothing with the store's own writer (`wire_json`).

use ledgerport_core::entry::Entry;

/// A JSON string, as any JSON writer escapes it.
pub fn json_string(text: &str) -> String {
    serde_json::to_string(text).unwrap_or_else(|e| panic!("a string serialises: {e}"))
}

/// The Report API's JSON object of `e`; with `personal`, its payer's details when it has them.
pub fn entry_json(e: &Entry, personal: bool) -> String {
    let s = json_string;
    let mut out = format!(
        "{{\"pspReference\":{},\"time\":{},\"ledgerDate\":{},\"entryType\":{},\"reference\":{},\
         \"currency\":{},\"amount\":{},\"balanceBefore\":{},\"balanceAfter\":{},\
         \"recipientHandle\":{}",
        s(&e.psp_reference),
        s(&e.time),
        s(&e.ledger_date.to_string()),
        s(&e.entry_type),
        s(&e.reference),
        s(e.currency.as_str()),
        e.amount,
        e.balance_before,
        e.balance_after,
        s(&e.recipient_handle),
    );
    if let (true, Some(p)) = (personal, &e.payer) {
        out.push_str(&format!(
            ",\"name\":{},\"message\":{},\"maskedPhoneNo\":{}",
            s(&p.name),
            s(&p.message),
            s(&p.masked_phone_no)
        ));
    }
    out.push('}');
    out
}
