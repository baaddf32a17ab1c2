from __future__ import annotations

from workers.provisioning import names

BASE = "DC=hosting,DC=test"


def test_tenant_dn() -> None:
    assert names.tenant_dn("contoso", BASE) == "OU=contoso,OU=Tenants,DC=hosting,DC=test"


def test_special_characters_stay_one_literal_rdn_value() -> None:
    # Expected strings written out by hand from RFC 4514, section 2.4.
    assert names.rdn("CN", 'a,b+c"d\\e<f>g;h=i') == 'CN=a\\,b\\+c\\"d\\\\e\\<f\\>g\\;h\\=i'
    assert names.rdn("CN", "#lead") == "CN=\\#lead"
    assert names.rdn("CN", " padded ") == "CN=\\ padded\\ "
