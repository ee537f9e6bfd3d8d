"""The ``stripe-placeholders`` world (tools/make_stripe_placeholder_seed.py) through a real
guard and the official SDK: objects nested under a seeded parent are that parent's (persons
of an account, reversals of a transfer, refunds of an application fee, a quote's line
items), an account's external accounts and a customer's sources hold cards besides bank
accounts, and newer nested parameters the SDK sends are taken."""

from __future__ import annotations

import pytest
import stripe

from tests.providers.stripe_api.conftest import sdk

ACCOUNT = "acct_xxxxxxxxxxxxx"


@pytest.fixture
def placeholders(guard_proxy) -> tuple[stripe.StripeClient, object]:
    g = guard_proxy(world="stripe-placeholders", seed=5)
    return sdk(g), g


def test_a_card_external_account_is_found_among_the_cards_and_changes_there(placeholders):
    c, g = placeholders
    card = c.v1.accounts.external_accounts.retrieve(ACCOUNT, "card_xxxxxxxxxxxxx")
    assert card.object == "card" and card.id == "card_xxxxxxxxxxxxx"
    bank = c.v1.accounts.external_accounts.retrieve(ACCOUNT, "ba_xxxxxxxxxxxxx")
    assert bank.object == "bank_account"
    updated = c.v1.accounts.external_accounts.update(ACCOUNT, "card_xxxxxxxxxxxxx",
                                                     {"metadata": {"team": "ops"}})
    assert updated.object == "card" and updated.metadata["team"] == "ops"
    again = c.v1.accounts.external_accounts.retrieve(ACCOUNT, "card_xxxxxxxxxxxxx")
    assert again.metadata["team"] == "ops"
    deleted = c.v1.accounts.external_accounts.delete(ACCOUNT, "card_xxxxxxxxxxxxx")
    assert deleted.deleted is True
    with pytest.raises(stripe.InvalidRequestError) as info:
        c.v1.accounts.external_accounts.retrieve(ACCOUNT, "card_xxxxxxxxxxxxx")
    assert info.value.http_status == 404 and info.value.code == "resource_missing"
    # an id in none of the collection's types is still not found
    with pytest.raises(stripe.InvalidRequestError) as info:
        c.v1.accounts.external_accounts.retrieve(ACCOUNT, "card_nope")
    assert info.value.http_status == 404
    assert g.upstream_attempts == []  # type: ignore[attr-defined]


def test_a_customers_card_and_bank_account_sources_are_both_its_sources(placeholders):
    c, _ = placeholders
    card = c.v1.customers.payment_sources.update("cus_123", "card_123",
                                                 {"metadata": {"k": "v"}})
    assert card.object == "card" and card.metadata["k"] == "v"
    bank = c.v1.customers.payment_sources.update("cus_123", "ba_123", {"metadata": {"k": "w"}})
    assert bank.object == "bank_account" and bank.metadata["k"] == "w"
    listed = c.v1.customers.payment_sources.list("cus_123")
    assert {"card_123", "ba_123"} <= {s.id for s in listed.data}
    cards = c.v1.customers.payment_sources.list("cus_123", {"object": "card"})
    assert [s.id for s in cards.data] == ["card_123"]


def test_the_persons_of_a_seeded_account_are_its_own(placeholders):
    c, _ = placeholders
    persons = c.v1.accounts.persons.list(ACCOUNT)
    assert [p.id for p in persons.data] == ["person_xxxxxxxxxxxxx"]
    assert persons.data[0].account == ACCOUNT
    others = c.v1.accounts.persons.list("acct_123")
    assert "person_123" in {p.id for p in others.data}
    assert "person_xxxxxxxxxxxxx" not in {p.id for p in others.data}
    person = c.v1.accounts.persons.update("acct_123", "person_123", {"first_name": "Jenny"})
    assert person.first_name == "Jenny" and person.account == "acct_123"
    c.v1.accounts.persons.delete("acct_123", "person_123")
    assert "person_123" not in {p.id for p in c.v1.accounts.persons.list("acct_123").data}


def test_ids_nested_under_a_placeholder_name_the_placeholder(placeholders):
    c, _ = placeholders
    fee = c.v1.application_fees.retrieve("fee_123")
    # the example's refunds list points at the example fee: here at this one
    assert fee.refunds.url == "/v1/application_fees/fee_123/refunds"
    refund = c.v1.application_fees.refunds.retrieve("fee_123", "fr_123")
    assert refund.fee == "fee_123"
    refund = c.v1.application_fees.refunds.update("fee_123", "fr_123",
                                                  {"metadata": {"a": "b"}})
    assert refund.metadata["a"] == "b"
    reversal = c.v1.transfers.reversals.update("tr_123", "trr_123", {"metadata": {"a": "b"}})
    assert reversal.transfer == "tr_123" and reversal.metadata["a"] == "b"
    assert c.v1.transfers.reversals.retrieve("tr_xxxxxxxxxxxxx",
                                             "trr_xxxxxxxxxxxxx").transfer == "tr_xxxxxxxxxxxxx"


def test_a_seeded_quote_has_line_items(placeholders):
    c, _ = placeholders
    for quote in ("qt_xxxxxxxxxxxxx", "qt_123"):
        items = c.v1.quotes.line_items.list(quote)
        assert len(items.data) == 1 and items.data[0].object == "item"
        upfront = c.v1.quotes.computed_upfront_line_items.list(quote)
        assert upfront.data[0].id == items.data[0].id


def test_fuel_quantity_decimal_is_taken_and_its_unknown_siblings_are_not(stripe_guard):
    c, g = stripe_guard
    fuel = {"type": "diesel", "unit": "liter", "unit_cost_decimal": "3.5",
            "quantity_decimal": "10"}
    card = "ic_1PgafmB7WZ01zgkW02Hf9z6c"
    done = c.v1.test_helpers.issuing.transactions.create_force_capture(
        {"amount": 100, "card": card, "purchase_details": {"fuel": fuel}})
    assert done.object == "issuing.transaction"
    with pytest.raises(stripe.InvalidRequestError) as info:
        c.v1.test_helpers.issuing.transactions.create_unlinked_refund(
            {"amount": 100, "card": card,
             "purchase_details": {"fuel": {**fuel, "litres": "10"}}})
    assert info.value.code == "parameter_unknown"
    assert info.value.param == "purchase_details[fuel][litres]"
    with pytest.raises(stripe.InvalidRequestError) as info:
        c.v1.test_helpers.issuing.transactions.create_unlinked_refund(
            {"amount": 100, "card": card,
             "purchase_details": {"fuel": {**fuel, "quantity_decimal": "ten"}}})
    assert info.value.param == "purchase_details[fuel][quantity_decimal]"
    assert g.upstream_attempts == []


def test_a_quote_pdf_is_a_pdf_of_that_quote_and_an_unknown_quote_has_none(placeholders):
    c, g = placeholders
    answer = c.v1.quotes.pdf("qt_123")  # sent to files.stripe.com
    assert answer.headers["Content-Type"] == "application/pdf"
    pdf = answer.io.read()
    assert pdf.startswith(b"%PDF-1.4") and pdf.rstrip().endswith(b"%%EOF")
    assert b"(quote qt_123)" in pdf, pdf[:400]
    xref = int(pdf.rsplit(b"startxref\n", 1)[1].split()[0])
    assert pdf[xref:].startswith(b"xref\n")  # the cross-reference table is where it says
    with pytest.raises(stripe.InvalidRequestError) as info:
        c.v1.quotes.pdf("qt_nope")
    assert info.value.http_status == 404
    assert g.upstream_attempts == []  # type: ignore[attr-defined]


def test_files_stripe_com_answers_uploads_and_pdfs_and_nothing_else(stripe_guard):
    import io

    import requests

    c, g = stripe_guard
    uploaded = c.v1.files.create({"purpose": "dispute_evidence",
                                  "file": io.BytesIO(b"%PDF-1.4 evidence")})
    assert uploaded.id.startswith("file_") and uploaded.purpose == "dispute_evidence"
    assert c.v1.files.retrieve(uploaded.id).id == uploaded.id  # on api.stripe.com
    r = requests.get("https://files.stripe.com/v1/customers", proxies=g.proxies,
                     verify=g.ca, auth=("sk_test_guard", ""), timeout=30)
    assert r.status_code == 404
    assert r.json()["error"]["message"].startswith("Unrecognized request URL")
    assert g.upstream_attempts == []


def test_a_seeded_token_of_stripes_example_card_charges_once(placeholders):
    c, _ = placeholders
    charge = c.v1.charges.create({"amount": 500, "currency": "usd", "source": "tok_xxxx"})
    assert charge.status == "succeeded" and charge.source.last4 == "4242"
    with pytest.raises(stripe.InvalidRequestError) as info:
        c.v1.charges.create({"amount": 500, "currency": "usd", "source": "tok_xxxx"})
    assert info.value.code == "token_already_used"


def test_a_metadata_update_keeps_a_products_default_price_unchecked(placeholders):
    c, _ = placeholders
    # Stripe's example product names a default price of another example: a metadata
    # update leaves it alone, a default price sent now must be the product's own
    product = c.v1.products.update("prod_xxxxxxxxxxxxx", {"metadata": {"order_id": "6735"}})
    assert product.metadata["order_id"] == "6735"
    other = c.v1.products.create({"name": "Other", "default_price_data": {
        "currency": "usd", "unit_amount": 100}})
    with pytest.raises(stripe.InvalidRequestError) as info:
        c.v1.products.update("prod_xxxxxxxxxxxxx", {"default_price": other.default_price})
    assert info.value.param == "default_price"


def test_the_ids_the_sdks_tests_name_under_a_parent_are_that_parents(placeholders):
    c, _ = placeholders
    assert [x.id for x in c.v1.accounts.capabilities.list("acct_123").data] == ["acap_123"]
    assert [x.id for x in c.v1.accounts.capabilities.list(ACCOUNT).data] == ["card_payments"]
    assert c.v1.customers.balance_transactions.retrieve("cus_123", "cbtxn_123").customer == \
        "cus_123"
    charge = c.v1.charges.retrieve("ch_123")
    assert charge.refunds.url == "/v1/charges/ch_123/refunds"
    assert charge.refunds.retrieve("re_abc").charge == "ch_123"
    assert [x.id for x in c.v1.sources.transactions.list("src_123").data] == ["srctxn_123"]


def test_the_committed_seed_is_what_the_tool_writes(tmp_path, monkeypatch):
    import importlib.util
    from pathlib import Path

    tool = Path(__file__).resolve().parents[3] / "tools" / "make_stripe_placeholder_seed.py"
    spec = importlib.util.spec_from_file_location("make_stripe_placeholder_seed", tool)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    committed = module.OUT.read_text()
    monkeypatch.setattr(module, "OUT", tmp_path / "seed.json")
    assert module.main() == 0
    assert (tmp_path / "seed.json").read_text() == committed


def test_the_seeded_bank_and_card_tokens_make_external_accounts_of_their_types(placeholders):
    c, g = placeholders
    bank = c.v1.accounts.external_accounts.create(ACCOUNT,
                                                  {"external_account": "btok_xxxxxxxxxxxxx"})
    assert bank.object == "bank_account" and bank.account == ACCOUNT
    card = c.v1.accounts.external_accounts.create(ACCOUNT,
                                                  {"external_account": "tok_xxxx_debit"})
    assert card.object == "card" and card.account == ACCOUNT
    assert g.upstream_attempts == []  # type: ignore[attr-defined]
