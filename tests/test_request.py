"""guard's request type: form nesting (Stripe style), JSON, multipart, dotted lookups."""

import pytest

from guard.request import Request, dig, nest_pairs


@pytest.mark.parametrize(
    ("pairs", "expected"),
    [
        ([("email", "a@b.c")], {"email": "a@b.c"}),
        ([("metadata[plan]", "pro"), ("metadata[seats]", "3")],
         {"metadata": {"plan": "pro", "seats": "3"}}),
        ([("expand[]", "customer"), ("expand[]", "latest_charge")],
         {"expand": ["customer", "latest_charge"]}),
        ([("items[0][price]", "price_1"), ("items[1][price]", "price_2")],
         {"items": [{"price": "price_1"}, {"price": "price_2"}]}),
        ([("a[b][c]", "deep")], {"a": {"b": {"c": "deep"}}}),
        ([("a", "1"), ("a[b]", "2")], {"a": "1"}),
        # digits that are not ASCII ("²" passes str.isdigit, int() refuses it; "٣" int()
        # reads as 3) are keys like any other, never list indexes
        ([("metadata[²]", "x")], {"metadata": {"²": "x"}}),
        ([("a[0]", "x"), ("a[²]", "y")], {"a": {"0": "x", "²": "y"}}),
        ([("a[٣]", "x")], {"a": {"٣": "x"}}),
    ],
)
def test_form_pairs_nest_like_stripe_reads_them(pairs, expected):
    assert nest_pairs(pairs) == expected


def test_request_parses_a_form_body_lazily_and_once():
    r = Request.build("POST", "https://api.stripe.com/v1/customers",
                      headers={"Content-Type": "application/x-www-form-urlencoded"},
                      body="email=a%40b.c&metadata[plan]=pro")
    assert r.form == {"email": "a@b.c", "metadata": {"plan": "pro"}}
    assert r.form is r.form


def test_json_body_is_only_parsed_when_it_is_json():
    j = Request.build("POST", "https://x.test/", headers={"Content-Type": "application/json"},
                      body='{"a": {"b": [1, 2]}}')
    assert dig(j.json, "a.b.1") == (True, 2)
    assert Request.build("POST", "https://x.test/", body="not json").json is None


def test_multipart_fields_and_files_are_separated():
    body = (b"--XX\r\nContent-Disposition: form-data; name=\"to\"\r\n\r\nbob@example.com\r\n"
            b"--XX\r\nContent-Disposition: form-data; name=\"attachment\"; filename=\"a.txt\"\r\n"
            b"Content-Type: text/plain\r\n\r\nhello\r\n--XX--\r\n")
    r = Request.build("POST", "https://api.mailgun.net/v3/x/messages",
                      headers={"Content-Type": "multipart/form-data; boundary=XX"}, body=body)
    assert r.form == {"to": "bob@example.com"}
    (name, file), = [(k, v) for k, v in r.multipart_fields if k == "attachment"]
    assert (file.filename, file.size) == ("a.txt", 5)


def test_url_round_trips_with_default_ports_dropped():
    r = Request.build("get", "https://API.Stripe.com:443/v1/x?limit=3")
    assert (r.method, r.host, r.port, r.url) == ("GET", "api.stripe.com", 443,
                                                  "https://api.stripe.com/v1/x?limit=3")


def test_a_dotted_lookup_does_not_read_a_non_ascii_digit_as_an_index():
    assert dig({"a": ["x", "y"]}, "a.1") == (True, "y")
    assert dig({"a": ["x", "y"]}, "a.¹") == (False, None)
