"""The directory as the engine sees it (``port``) and what stands behind it: the ldap3 edge
to a DC (``ldap_directory``), an in-memory directory held to the same contract
(``memory``, with ``ldap_filter``), the one door to ldap3's escaping (``escaping``), the
``key=value`` codec of the fleet's own facts (``key_values``) and the metered wrapper."""
