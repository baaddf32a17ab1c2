"""The directory as the engine sees it (``port``), its ldap3 edge (``ldap_directory``),
the one door to ldap3's escaping (``escaping``) and the metered wrapper."""
