"""The complaint-mail and XARF families of ../shared/corpus/reports, each file against what it must yield.

The expectations below were derived from ../shared/corpus/reports/MANIFEST.md ("What a correct parser must
extract") and from reading each file: parser chosen by sniffing (all registered parsers, as the intake does),
number of events, their kinds, and the first event's subject (source IP, else URL, else domain/account).
Differences from the MANIFEST's auto-summary column are deliberate: that column lists *every* address seen in a
mail, the subject is the reported one (Netcraft_Example_11's JSON names 10.2.3.4; Netcraft_Example_13's second
address is the victims' target range; the abusix v3 "potentially compromised" samples report an account).
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from abusedesk.domain.errors import ParseError
from abusedesk.domain.ids import sha256_hex
from abusedesk.domain.records import Event, RawInput
from abusedesk.parsers.base import Parser, Report
from abusedesk.plugins import load_parsers, sniff

pytestmark = pytest.mark.corpus

FAMILIES = (
    "abuseio-notifier-samples/feedback-loop",
    "abuseio-notifier-samples/spamexperts",
    "abuseio-notifier-samples/blocklistde",
    "abuseio-notifier-samples/netcraft",
    "abuseio-notifier-samples/cleanmx",
    "abuseio-notifier-samples/webiron",
    "abuseio-notifier-samples/cyscon",
    "abuseio-notifier-samples/google",
    "abuseio-notifier-samples/projecthoneypot",
    "abuseio-notifier-samples/abusehub",
    "abuseio-parser-netcraft-samples",
    "abusix-xarf-v3-samples/positive/3",
    "abusix-xarf-v3-samples/negative/3",
    "xarf-spec-samples/v3",
    "xarf-spec-samples/v4",
)
# Cerberus files that belong to the legal-notice helper's parsers (DMCA), not to this family
NOT_OURS = {"ovh-cerberus-core-samples/sample5"}

# (file, parser, events, kinds, first subject)
EXPECTED_EVENTS: list[tuple[str, str, int, str, str]] = [
    ("abuseio-notifier-samples/feedback-loop/AOL_example_1.eml", "arf", 1, "spam", "10.17.18.1"),
    ("abuseio-notifier-samples/feedback-loop/AOL_example_2.eml", "arf", 1, "spam", "10.17.18.2"),
    ("abuseio-notifier-samples/feedback-loop/Bluetie_example_1.eml", "arf", 1, "spam", "10.17.18.3"),
    ("abuseio-notifier-samples/feedback-loop/Bluetie_example_2.eml", "arf", 1, "spam", "10.17.18.4"),
    ("abuseio-notifier-samples/feedback-loop/Comcast_example_1.eml", "arf", 1, "spam", "10.17.18.5"),
    ("abuseio-notifier-samples/feedback-loop/Comcast_example_2.eml", "arf", 1, "spam", "10.17.18.6"),
    ("abuseio-notifier-samples/feedback-loop/Cox_example_1.eml", "arf", 1, "spam", "10.17.18.7"),
    ("abuseio-notifier-samples/feedback-loop/Cox_example_2.eml", "arf", 1, "spam", "10.17.18.8"),
    ("abuseio-notifier-samples/feedback-loop/Fastmail_example_1.eml", "arf", 1, "spam", "10.17.18.9"),
    ("abuseio-notifier-samples/feedback-loop/Fastmail_example_2.eml", "arf", 1, "spam", "10.17.18.11"),
    ("abuseio-notifier-samples/feedback-loop/OpenSRS_example_1.eml", "arf", 1, "spam", "10.17.18.12"),
    ("abuseio-notifier-samples/feedback-loop/OpenSRS_example_2.eml", "arf", 1, "spam", "10.17.18.13"),
    ("abuseio-notifier-samples/feedback-loop/Rackspace_example_1.eml", "arf", 1, "spam", "10.17.18.14"),
    ("abuseio-notifier-samples/feedback-loop/Rackspace_example_2.eml", "arf", 1, "spam", "10.17.18.15"),
    ("abuseio-notifier-samples/feedback-loop/RoadRunner_example_1.eml", "arf", 1, "spam", "10.17.18.16"),
    ("abuseio-notifier-samples/feedback-loop/RoadRunner_example_2.eml", "arf", 1, "spam", "10.17.18.20"),
    ("abuseio-notifier-samples/feedback-loop/Synacor_example_1.eml", "arf", 1, "spam", "10.17.18.21"),
    ("abuseio-notifier-samples/feedback-loop/Synacor_example_2.eml", "arf", 1, "spam", "10.18.19.20"),
    ("abuseio-notifier-samples/feedback-loop/USANet_example_1.eml", "arf", 1, "spam", "10.17.18.23"),
    ("abuseio-notifier-samples/feedback-loop/USANet_example_2.eml", "arf", 1, "spam", "10.17.18.24"),
    ("abuseio-notifier-samples/feedback-loop/Yahoo_example_1.eml", "arf", 1, "spam", "10.17.18.25"),
    ("abuseio-notifier-samples/feedback-loop/Zoho_example_1.eml", "arf", 1, "spam", "10.17.18.28"),
    ("abuseio-notifier-samples/feedback-loop/Zoho_example_2.eml", "arf", 1, "spam", "10.17.18.29"),
    ("abuseio-notifier-samples/spamexperts/1.eml", "arf", 1, "spam", "172.16.10.13"),
    ("abuseio-notifier-samples/spamexperts/10.eml", "arf", 1, "spam", "10.0.2.35"),
    ("abuseio-notifier-samples/spamexperts/11.eml", "arf", 1, "spam", "fdf1:cb9d:f59e:19b0::122"),
    ("abuseio-notifier-samples/spamexperts/2.eml", "arf", 1, "spam", "192.168.1.12"),
    ("abuseio-notifier-samples/spamexperts/3.eml", "arf", 1, "spam", "10.0.2.35"),
    ("abuseio-notifier-samples/spamexperts/4.eml", "arf", 1, "spam", "10.0.2.35"),
    ("abuseio-notifier-samples/spamexperts/5.eml", "arf", 1, "spam", "10.0.2.35"),
    ("abuseio-notifier-samples/spamexperts/6.eml", "arf", 1, "spam", "10.0.2.35"),
    ("abuseio-notifier-samples/spamexperts/7.eml", "arf", 1, "spam", "10.0.2.35"),
    ("abuseio-notifier-samples/spamexperts/8.eml", "arf", 1, "spam", "10.0.2.35"),
    ("abuseio-notifier-samples/spamexperts/9.eml", "arf", 1, "spam", "10.0.2.35"),
    ("abuseio-notifier-samples/blocklistde/Blocklistde_Example_1.eml", "xarf_legacy", 1, "spam", "10.0.2.150"),
    (
        "abuseio-notifier-samples/blocklistde/Blocklistde_Example_2.eml",
        "xarf_legacy",
        1,
        "spam",
        "fdf1:cb9d:f59e:19b0::33:4f",
    ),
    ("abuseio-notifier-samples/netcraft/Netcraft_Example_1.eml", "xarf_legacy", 1, "malware", "10.0.2.2"),
    ("abuseio-notifier-samples/netcraft/Netcraft_Example_2.eml", "xarf_legacy", 1, "malware", "fdf1:cb9d:f59e:19b0::1"),
    (
        "abuseio-notifier-samples/netcraft/Netcraft_Example_3.eml",
        "xarf_legacy",
        1,
        "phishing",
        "http://customer1.tld/ints.cancellation.form.your.pc.is.now.connected/to.ituneserver.with.ssl2active.applecustomers.webformlogin2/",
    ),
    (
        "abuseio-notifier-samples/netcraft/Netcraft_Example_4.eml",
        "xarf_legacy",
        1,
        "phishing",
        "http://john-doe.tld/ints.cancellation.form.your.pc.is.now.connected/to.ituneserver.with.ssl2active.applecustomers.webformlogin2/",
    ),
    (
        "abuseio-notifier-samples/netcraft/Netcraft_Example_6.eml",
        "xarf_legacy",
        1,
        "phishing",
        "http://www.john-doe.tld/~newhtvzr/files/update/files/others/ii.php?rand=13InboxLightaspxn.1774256418&fid.4.1252899642&fid=1&fav.1&rand.13InboxLight.aspxn.1774256418&fid.1252899642&fid.1&fav.1&username=&username1=&domain=&.rand=13InboxLight.aspx?n=1774256",
    ),
    (
        "abuseio-notifier-samples/netcraft/Netcraft_Example_8.eml",
        "xarf_legacy",
        1,
        "phishing",
        "http://www.johndoe.tld/modules/3xt/492fa6b3ede550428e9760cdefb33582/",
    ),
    (
        "abuseio-notifier-samples/netcraft/Netcraft_Example_9.eml",
        "xarf_legacy",
        1,
        "phishing",
        "http://www.johndoe.tld/w/www.victim.co.uk/index.php",
    ),
    ("abuseio-notifier-samples/cleanmx/Cleanmx_Example_1.eml", "xarf_legacy", 1, "crawling", "192.168.2.20"),
    ("abuseio-notifier-samples/cleanmx/Cleanmx_Example_2.eml", "urlreport", 1, "malware", "172.16.10.13"),
    (
        "abuseio-notifier-samples/cleanmx/Cleanmx_Example_3.eml",
        "xarf_legacy",
        1,
        "crawling",
        "fdf1:cb9d:f59e:19b0:45ff::1",
    ),
    (
        "abuseio-notifier-samples/cleanmx/Cleanmx_Example_4.eml",
        "urlreport",
        1,
        "malware",
        "fdf1:cb9d:f59e:19b0:45ff::1",
    ),
    ("abuseio-notifier-samples/webiron/Webiron_Example_1.eml", "xarf_legacy", 2, "sql-injection", "172.16.31.20"),
    ("abuseio-notifier-samples/webiron/Webiron_Example_2.eml", "freetext", 1, "botnet", "172.16.10.13"),
    ("abuseio-notifier-samples/webiron/Webiron_Example_3.eml", "freetext", 1, "botnet", "fdf1:cb9d:f59e:19b0:0:3:4:2"),
    # AbuseHub: a Shadowserver botnet-drone event (ZeroAccess) in the abusehubcsv attachment (issue 4; these fell
    # through to the free-text parser before, which read the mail's own date as the event time)
    ("abuseio-notifier-samples/abusehub/Abusehub_Example_1.eml", "abusehub", 1, "infected-host", "172.16.10.13"),
    (
        "abuseio-notifier-samples/abusehub/Abusehub_Example_2.eml",
        "abusehub",
        1,
        "infected-host",
        "fdf1:cb9d:f59e:19b0:0:45:0:22",
    ),
    ("abuseio-notifier-samples/cyscon/Cyscon_Example_1.eml", "xarf_legacy", 1, "malware", "172.16.10.13"),
    (
        "abuseio-notifier-samples/cyscon/Cyscon_Example_2.eml",
        "xarf_legacy",
        1,
        "malware",
        "fdf1:cb9d:f59e:19b0:ff3:567:0:33",
    ),
    (
        "abuseio-notifier-samples/google/Safe_Browsing_Report_1.eml",
        "urlreport",
        5,
        "compromised-host,malware",
        "10.0.2.23",
    ),
    (
        "abuseio-notifier-samples/google/Safe_Browsing_Report_2.eml",
        "urlreport",
        5,
        "compromised-host,malware",
        "fdf1:cb9d:f59e:19b0:ff3:567:0:30",
    ),
    (
        "abuseio-notifier-samples/projecthoneypot/Projecthoneypot_Example_free_1.eml",
        "projecthoneypot",
        5,
        "crawling,spam",
        "10.0.2.1",
    ),
    (
        "abuseio-notifier-samples/projecthoneypot/Projecthoneypot_Example_free_2.eml",
        "projecthoneypot",
        5,
        "crawling,spam",
        "fdaa:b1c7:75bc:bab0::1",
    ),
    (
        "abuseio-notifier-samples/projecthoneypot/Projecthoneypot_Example_paid_1.eml",
        "projecthoneypot",
        5,
        "crawling,spam,threat-intel",
        "192.168.1.19",
    ),
    (
        "abuseio-notifier-samples/projecthoneypot/Projecthoneypot_Example_paid_2.eml",
        "projecthoneypot",
        5,
        "crawling,spam,threat-intel",
        "fd30::1:ff4e:3e:d:19",
    ),
    ("abuseio-parser-netcraft-samples/Netcraft_Example_10.eml", "xarf", 1, "phishing", "10.1.2.3"),
    ("abuseio-parser-netcraft-samples/Netcraft_Example_11.eml", "xarf", 1, "spam", "10.2.3.4"),
    ("abuseio-parser-netcraft-samples/Netcraft_Example_12.eml", "xarf", 1, "malware", "10.1.2.3"),
    ("abuseio-parser-netcraft-samples/Netcraft_Example_13.eml", "urlreport", 1, "brute-force", "10.1.2.3"),
    ("abuseio-parser-netcraft-samples/Netcraft_Example_14.eml", "xarf", 1, "malware", "10.1.2.3"),
    ("abuseio-parser-netcraft-samples/Netcraft_Example_15.eml", "xarf", 1, "malware", "10.1.2.3"),
    ("ovh-cerberus-core-samples/lexsicom", "urlreport", 1, "phishing", "1.2.3.4"),
    ("ovh-cerberus-core-samples/nfoservers", "freetext", 1, "dos", "1.2.3.4"),
    ("ovh-cerberus-core-samples/sample1", "freetext", 3, "other", "1.2.3.4"),
    ("ovh-cerberus-core-samples/sample11", "freetext", 1, "malware", "http://www.example.com/test.html"),
    ("ovh-cerberus-core-samples/sample12", "freetext", 1, "malware", "http://www.example.com/test.html"),
    ("ovh-cerberus-core-samples/sample13", "freetext", 1, "malware", "http://www.example.com/test.html"),
    ("ovh-cerberus-core-samples/sample14", "freetext", 1, "malware", "http://www.example.com/test.html"),
    ("ovh-cerberus-core-samples/sample15", "freetext", 1, "other", "1.2.3.4"),
    ("ovh-cerberus-core-samples/sample16", "freetext", 1, "other", "1.2.3.4"),
    ("ovh-cerberus-core-samples/sample17", "freetext", 1, "other", "1.2.3.4"),
    (
        "ovh-cerberus-core-samples/sample18",
        "freetext",
        1,
        "copyright",
        "http://www.illegalstreamingsite.com/my.super.movie.html",
    ),
    (
        "ovh-cerberus-core-samples/sample19",
        "freetext",
        1,
        "copyright",
        "http://www.illegalstreamingsite.com/my.super.movie.html",
    ),
    ("ovh-cerberus-core-samples/sample20", "freetext", 1, "phishing", "http://www.example.com/phishing.html"),
    ("ovh-cerberus-core-samples/sample23", "freetext", 1, "other", "http://www.cdnproxy-protected-domain.com/testcdn"),
    ("ovh-cerberus-core-samples/sample24", "freetext", 1, "other", "5.39.1.1"),
    (
        "ovh-cerberus-core-samples/sample3",
        "freetext",
        1,
        "other",
        "http://ipm.emsecure.net/optiext/optiextension.dll?ID=LngLhnlR8Now__HubGLmKBgV52gfN%2ByCxWAlR7mC86qzyIvvvxOzW1smGo5Iua36h8W%2B8yoVsu_NsP6tv3",
    ),
    ("ovh-cerberus-core-samples/sample8", "freetext", 1, "other", "1.2.3.4"),
    ("ovh-cerberus-core-samples/spamhaus", "freetext", 1, "blocklisted", "1.2.3.4"),
    ("ovh-cerberus-core-samples/xarf1.txt", "xarf_legacy", 1, "phishing", "http://domain.tld/images/login.html"),
    ("ovh-cerberus-core-samples/xarf2.txt", "xarf_legacy", 1, "malware", "http://www.XXXXXXX.com.cn/help.htm"),
    ("abusix-xarf-v3-samples/positive/3/botnet_sample.json", "xarf", 1, "botnet", "192.0.2.55"),
    ("abusix-xarf-v3-samples/positive/3/childabuse_sample.json", "xarf", 1, "csam", "192.0.2.55"),
    ("abusix-xarf-v3-samples/positive/3/copyright_sample.json", "xarf", 1, "copyright", "192.0.2.55"),
    ("abusix-xarf-v3-samples/positive/3/ddos_sample.json", "xarf", 1, "dos", "192.0.2.55"),
    ("abusix-xarf-v3-samples/positive/3/exploit_sample.json", "xarf", 1, "intrusion", "192.0.2.55"),
    ("abusix-xarf-v3-samples/positive/3/exploit_sample_minimal.json", "xarf", 1, "intrusion", "192.0.2.55"),
    (
        "abusix-xarf-v3-samples/positive/3/harassment_sample_game.json",
        "xarf",
        1,
        "harassment",
        "https://thepetgoatgame.play",
    ),
    (
        "abusix-xarf-v3-samples/positive/3/harassment_sample_image.json",
        "xarf",
        1,
        "harassment",
        "https://social.media/comment/87896745329",
    ),
    ("abusix-xarf-v3-samples/positive/3/harassment_sample_url.json", "xarf", 1, "harassment", "http://irc.5ch.net"),
    ("abusix-xarf-v3-samples/positive/3/loginattack_sample.json", "xarf", 1, "brute-force", "192.0.2.55"),
    (
        "abusix-xarf-v3-samples/positive/3/loginattack_sample_optional_api_info.json",
        "xarf",
        1,
        "brute-force",
        "192.0.2.55",
    ),
    ("abusix-xarf-v3-samples/positive/3/malware_no_url.json", "xarf", 1, "malware", "192.0.2.55"),
    ("abusix-xarf-v3-samples/positive/3/malware_sample.json", "xarf", 1, "malware", "192.0.2.55"),
    ("abusix-xarf-v3-samples/positive/3/openservice_sample.json", "xarf", 1, "open-service", "192.0.2.55"),
    ("abusix-xarf-v3-samples/positive/3/openservice_sample_minimal.json", "xarf", 1, "open-service", "192.0.2.55"),
    (
        "abusix-xarf-v3-samples/positive/3/openservice_sample_optional_api_info.json",
        "xarf",
        1,
        "open-service",
        "192.0.2.55",
    ),
    ("abusix-xarf-v3-samples/positive/3/phishing_sample.json", "xarf", 1, "phishing", "192.0.2.55"),
    ("abusix-xarf-v3-samples/positive/3/portscan_sample.json", "xarf", 1, "scan", "192.0.2.55"),
    (
        "abusix-xarf-v3-samples/positive/3/potentially_compromised_attacker_sample.json",
        "xarf",
        1,
        "intrusion",
        "192.0.2.55",
    ),
    ("abusix-xarf-v3-samples/positive/3/potentially_compromised_sample.json", "xarf", 1, "intrusion", "Karl Heinz"),
    (
        "abusix-xarf-v3-samples/positive/3/potentially_compromised_sample_email.json",
        "xarf",
        1,
        "intrusion",
        "hans.wurst@gmail.com",
    ),
    ("abusix-xarf-v3-samples/positive/3/reporter_info_minimal.json", "xarf", 1, "spam", "192.0.2.55"),
    ("abusix-xarf-v3-samples/positive/3/reporter_info_org.json", "xarf", 1, "spam", "192.0.2.55"),
    ("abusix-xarf-v3-samples/positive/3/reporter_info_person.json", "xarf", 1, "spam", "192.0.2.55"),
    ("abusix-xarf-v3-samples/positive/3/rpz_sample.json", "xarf", 1, "infected-host", "192.0.2.55"),
    (
        "abusix-xarf-v3-samples/positive/3/rpz_sample_additional_fields.json",
        "xarf",
        1,
        "infected-host",
        "2001:db8:1300:9:3949:9d93:bd2:9da5",
    ),
    ("abusix-xarf-v3-samples/positive/3/spam_sample.json", "xarf", 1, "spam", "192.0.2.55"),
    (
        "abusix-xarf-v3-samples/positive/3/trademark_sample.json",
        "xarf",
        1,
        "trademark",
        "http://www.i-steal-your-trademark.com/your.logo",
    ),
    ("abusix-xarf-v3-samples/positive/3/webcrawler_sample.json", "xarf", 1, "crawling", "192.0.2.59"),
    ("xarf-spec-samples/v3/botnet_v3_sample.json", "xarf", 1, "botnet", "198.51.100.25"),
    ("xarf-spec-samples/v3/ddos_v3_sample.json", "xarf", 1, "dos", "172.16.254.10"),
    (
        "xarf-spec-samples/v3/phishing_v3_sample.json",
        "xarf",
        1,
        "phishing",
        "https://malicious-example.net/banking-login/",
    ),
    ("xarf-spec-samples/v3/spam_v3_sample.json", "xarf", 1, "spam", "192.168.1.100"),
    ("xarf-spec-samples/v4/connection-ddos.json", "xarf", 1, "dos", "192.0.2.155"),
    ("xarf-spec-samples/v4/connection-infected-host.json", "xarf", 1, "infected-host", "203.0.113.85"),
    ("xarf-spec-samples/v4/connection-login-attack.json", "xarf", 1, "brute-force", "198.51.100.77"),
    ("xarf-spec-samples/v4/connection-port-scan.json", "xarf", 1, "scan", "198.51.100.150"),
    ("xarf-spec-samples/v4/connection-reconnaissance.json", "xarf", 1, "reconnaissance", "192.0.2.99"),
    ("xarf-spec-samples/v4/connection-scraping.json", "xarf", 1, "crawling", "192.0.2.150"),
    ("xarf-spec-samples/v4/connection-sql-injection.json", "xarf", 1, "sql-injection", "192.0.2.45"),
    ("xarf-spec-samples/v4/connection-vulnerability-scan.json", "xarf", 1, "vulnerability-scan", "203.0.113.77"),
    (
        "xarf-spec-samples/v4/content-brand-infringement.json",
        "xarf",
        1,
        "trademark",
        "https://fake-apple-store.example.com/iphone",
    ),
    ("xarf-spec-samples/v4/content-csam.json", "xarf", 1, "csam", "198.51.100.42"),
    ("xarf-spec-samples/v4/content-csem.json", "xarf", 1, "csem", "198.51.100.42"),
    ("xarf-spec-samples/v4/content-exposed-data.json", "xarf", 1, "exposed-data", "198.51.100.99"),
    (
        "xarf-spec-samples/v4/content-fraud.json",
        "xarf",
        1,
        "fraud",
        "https://crypto-scam-invest.example.com/guaranteed-returns",
    ),
    ("xarf-spec-samples/v4/content-malware.json", "xarf", 1, "malware", "192.0.2.75"),
    ("xarf-spec-samples/v4/content-phishing.json", "xarf", 1, "phishing", "203.0.113.45"),
    (
        "xarf-spec-samples/v4/content-remote-compromise.json",
        "xarf",
        1,
        "intrusion",
        "https://compromised-blog.example.com/wp-admin/shell.php",
    ),
    (
        "xarf-spec-samples/v4/content-suspicious-registration.json",
        "xarf",
        1,
        "suspicious-registration",
        "https://g00gle-verify.example.com",
    ),
    ("xarf-spec-samples/v4/copyright-copyright.json", "xarf", 1, "copyright", "198.51.100.75"),
    (
        "xarf-spec-samples/v4/copyright-cyberlocker.json",
        "xarf",
        1,
        "copyright-cyberlocker",
        "https://file-sharing.example.com/download/movie2024.mp4",
    ),
    (
        "xarf-spec-samples/v4/copyright-link-site.json",
        "xarf",
        1,
        "copyright-link-site",
        "https://links-aggregator.example.net/movie/protected-film-2024",
    ),
    ("xarf-spec-samples/v4/copyright-p2p.json", "xarf", 1, "copyright-p2p", "192.0.2.100"),
    (
        "xarf-spec-samples/v4/copyright-ugc-platform.json",
        "xarf",
        1,
        "copyright-ugc",
        "https://video-platform.example.com/watch?v=copyrighted_content",
    ),
    ("xarf-spec-samples/v4/copyright-usenet.json", "xarf", 1, "copyright-usenet", "news.usenet-provider.example.com"),
    ("xarf-spec-samples/v4/infrastructure-botnet.json", "xarf", 1, "botnet", "198.51.100.25"),
    ("xarf-spec-samples/v4/infrastructure-compromised-server.json", "xarf", 1, "compromised-host", "203.0.113.150"),
    ("xarf-spec-samples/v4/messaging-bulk-messaging.json", "xarf", 1, "bulk-messaging", "mail.bulk-sender.example"),
    ("xarf-spec-samples/v4/messaging-spam.json", "xarf", 1, "spam", "192.168.1.100"),
    ("xarf-spec-samples/v4/reputation-blocklist.json", "xarf", 1, "blocklisted", "203.0.113.200"),
    ("xarf-spec-samples/v4/reputation-threat-intelligence.json", "xarf", 1, "threat-intel", "192.0.2.50"),
    ("xarf-spec-samples/v4/vulnerability-cve.json", "xarf", 1, "vulnerable-service", "172.16.1.200"),
    ("xarf-spec-samples/v4/vulnerability-misconfiguration.json", "xarf", 1, "misconfiguration", "192.0.2.75"),
    ("xarf-spec-samples/v4/vulnerability-open-service.json", "xarf", 1, "open-service", "192.0.2.50"),
    ("xarf-python-shared-samples/samples/valid/v3/botnet_v3_sample.json", "xarf", 1, "botnet", "198.51.100.25"),
    ("xarf-python-shared-samples/samples/valid/v3/ddos_v3_sample.json", "xarf", 1, "dos", "172.16.254.10"),
    (
        "xarf-python-shared-samples/samples/valid/v3/phishing_v3_sample.json",
        "xarf",
        1,
        "phishing",
        "https://malicious-example.net/banking-login/",
    ),
    ("xarf-python-shared-samples/samples/valid/v3/spam_v3_sample.json", "xarf", 1, "spam", "192.168.1.100"),
    (
        "xarf-python-shared-samples/samples/valid/v4/connection/auth_failure_sample.json",
        "xarf",
        1,
        "brute-force",
        "172.16.0.99",
    ),
    (
        "xarf-python-shared-samples/samples/valid/v4/connection/ddos_certin_sample.json",
        "xarf",
        1,
        "dos",
        "172.16.254.10",
    ),
    ("xarf-python-shared-samples/samples/valid/v4/connection/ddos_sample.json", "xarf", 1, "dos", "192.0.2.155"),
    (
        "xarf-python-shared-samples/samples/valid/v4/connection/ip_spoof_sample.json",
        "xarf",
        1,
        "spoofed-source",
        "203.0.113.66",
    ),
    (
        "xarf-python-shared-samples/samples/valid/v4/connection/login_attack_sample.json",
        "xarf",
        1,
        "brute-force",
        "198.51.100.77",
    ),
    (
        "xarf-python-shared-samples/samples/valid/v4/connection/port_scan_sample.json",
        "xarf",
        1,
        "scan",
        "198.51.100.150",
    ),
    (
        "xarf-python-shared-samples/samples/valid/v4/content/defacement_sample.json",
        "xarf",
        1,
        "intrusion",
        "203.0.113.88",
    ),
    ("xarf-python-shared-samples/samples/valid/v4/content/fraud_sample.json", "xarf", 1, "fraud", "192.0.2.211"),
    (
        "xarf-python-shared-samples/samples/valid/v4/content/malware_distribution_sample.json",
        "xarf",
        1,
        "malware",
        "192.0.2.75",
    ),
    (
        "xarf-python-shared-samples/samples/valid/v4/content/phishing_site_lentho_sample.json",
        "xarf",
        1,
        "phishing",
        "https://malicious-example.net/de-DE?referral=AZG3167JVKA",
    ),
    (
        "xarf-python-shared-samples/samples/valid/v4/content/phishing_ybrand_sample.json",
        "xarf",
        1,
        "phishing",
        "203.0.113.45",
    ),
    (
        "xarf-python-shared-samples/samples/valid/v4/content/spamvertised_sample.json",
        "xarf",
        1,
        "spam",
        "198.51.100.222",
    ),
    ("xarf-python-shared-samples/samples/valid/v4/content/web_hack_sample.json", "xarf", 1, "intrusion", "192.0.2.133"),
    (
        "xarf-python-shared-samples/samples/valid/v4/copyright/dmca_tvb_sample.json",
        "xarf",
        1,
        "copyright",
        "198.51.100.75",
    ),
    (
        "xarf-python-shared-samples/samples/valid/v4/copyright/trademark_sample.json",
        "xarf",
        1,
        "trademark",
        "192.0.2.220",
    ),
    (
        "xarf-python-shared-samples/samples/valid/v4/examples/internal_metadata_receiver_example.json",
        "xarf",
        1,
        "spam",
        "203.0.113.88",
    ),
    (
        "xarf-python-shared-samples/samples/valid/v4/examples/internal_metadata_sender_example.json",
        "xarf",
        1,
        "spam",
        "203.0.113.88",
    ),
    (
        "xarf-python-shared-samples/samples/valid/v4/examples/internal_metadata_transmitted_example.json",
        "xarf",
        1,
        "spam",
        "203.0.113.88",
    ),
    (
        "xarf-python-shared-samples/samples/valid/v4/infrastructure/bot_certbund_sample.json",
        "xarf",
        1,
        "botnet",
        "198.51.100.25",
    ),
    (
        "xarf-python-shared-samples/samples/valid/v4/infrastructure/compromised_account_sample.json",
        "xarf",
        1,
        "intrusion",
        "198.51.100.88",
    ),
    (
        "xarf-python-shared-samples/samples/valid/v4/infrastructure/compromised_microsoft_exchange_sample.json",
        "xarf",
        1,
        "compromised-host",
        "172.16.10.50",
    ),
    (
        "xarf-python-shared-samples/samples/valid/v4/infrastructure/compromised_server_sample.json",
        "xarf",
        1,
        "compromised-host",
        "203.0.113.150",
    ),
    (
        "xarf-python-shared-samples/samples/valid/v4/infrastructure/compromised_website_sample.json",
        "xarf",
        1,
        "compromised-host",
        "192.0.2.180",
    ),
    (
        "xarf-python-shared-samples/samples/valid/v4/infrastructure/cve_infrastructure_sample.json",
        "xarf",
        1,
        "vulnerable-service",
        "203.0.113.99",
    ),
    (
        "xarf-python-shared-samples/samples/valid/v4/messaging/spam_spamcop_sample.json",
        "xarf",
        1,
        "spam",
        "192.168.1.100",
    ),
    (
        "xarf-python-shared-samples/samples/valid/v4/messaging/spam_spamtrap_phishing_sample.json",
        "xarf",
        1,
        "spam",
        "35.243.100.5",
    ),
    (
        "xarf-python-shared-samples/samples/valid/v4/messaging/spam_user_complaint_sample.json",
        "xarf",
        1,
        "spam",
        "209.85.220.65",
    ),
    (
        "xarf-python-shared-samples/samples/valid/v4/messaging/spam_v3_converted_sample.json",
        "xarf",
        1,
        "spam",
        "203.0.113.75",
    ),
    (
        "xarf-python-shared-samples/samples/valid/v4/messaging/whatsapp_social_engineering_sample.json",
        "xarf",
        1,
        "fraud",
        "+447955527026",
    ),
    (
        "xarf-python-shared-samples/samples/valid/v4/reputation/blocklist_aggregated_sample.json",
        "xarf",
        1,
        "blocklisted",
        "203.0.113.200",
    ),
    (
        "xarf-python-shared-samples/samples/valid/v4/reputation/ip_reclamation_sample.json",
        "xarf",
        1,
        "threat-intel",
        "203.0.113.175",
    ),
    ("xarf-python-shared-samples/samples/valid/v4/reputation/trap_sample.json", "xarf", 1, "spam", "198.51.100.199"),
    (
        "xarf-python-shared-samples/samples/valid/v4/vulnerability/cve_sample.json",
        "xarf",
        1,
        "vulnerable-service",
        "172.16.1.200",
    ),
    (
        "xarf-python-shared-samples/samples/valid/v4/vulnerability/malicious_activity_sample.json",
        "xarf",
        1,
        "threat-intel",
        "172.16.55.200",
    ),
    (
        "xarf-python-shared-samples/samples/valid/v4/vulnerability/open_service_shadowserver_sample.json",
        "xarf",
        1,
        "open-service",
        "192.0.2.50",
    ),
    (
        "xarf-python-shared-samples/samples/valid/v4/vulnerability/outdated_dnssec_sample.json",
        "xarf",
        1,
        "misconfiguration",
        "203.0.113.200",
    ),
    (
        "xarf-python-shared-samples/samples/valid/v4/vulnerability/ssl_freak_sample.json",
        "xarf",
        1,
        "vulnerable-service",
        "192.0.2.88",
    ),
    (
        "xarf-python-shared-samples/samples/valid/v4/vulnerability/ssl_poodle_sample.json",
        "xarf",
        1,
        "vulnerable-service",
        "198.51.100.134",
    ),
]

# (file, parser, reason fragment): inputs that must go to quarantine with a stated reason
EXPECTED_QUARANTINE: list[tuple[str, str, str]] = [
    ("ovh-cerberus-core-samples/nothing", "freetext", "names no IP address or URL"),
    ("ovh-cerberus-core-samples/sample10", "freetext", "names no IP address or URL"),
    ("ovh-cerberus-core-samples/sample21", "freetext", "names no IP address or URL"),
    ("ovh-cerberus-core-samples/sample22", "freetext", "names no IP address or URL"),
    ("ovh-cerberus-core-samples/sample9", "freetext", "names no IP address or URL"),
]

# (file, field named in the ParseError): the 50 abusix negatives and the 5 xarf-python invalid samples
INVALID_XARF: list[tuple[str, str]] = [
    ("abusix-xarf-v3-samples/negative/3/harassment_sample_no_description.json", "Report.ReportClass/ReportType"),
    ("abusix-xarf-v3-samples/negative/3/harassment_sample_no_harasser.json", "Report.ReportClass/ReportType"),
    ("abusix-xarf-v3-samples/negative/3/invalid_additional_fields.json", "Report.Custom.NumberOfIncidents"),
    ("abusix-xarf-v3-samples/negative/3/invalid_b64_flag.json", "Report.Samples[0].Base64Encoded"),
    ("abusix-xarf-v3-samples/negative/3/invalid_byte_count.json", "Report.ByteCount"),
    ("abusix-xarf-v3-samples/negative/3/invalid_date.json", "Report.Date"),
    ("abusix-xarf-v3-samples/negative/3/invalid_destination.json", "Report.DestinationIp"),
    ("abusix-xarf-v3-samples/negative/3/invalid_destination2.json", "Report.DestinationIp"),
    (
        "abusix-xarf-v3-samples/negative/3/invalid_email_as_identifier_potentially_compromised_account.json",
        "Report.Account.AccountIdentifier",
    ),
    ("abusix-xarf-v3-samples/negative/3/invalid_emails.json", "Report.SmtpMailFromAddress"),
    ("abusix-xarf-v3-samples/negative/3/invalid_empty.json", "ReporterInfo"),
    ("abusix-xarf-v3-samples/negative/3/invalid_empty_account.json", "Report.Account"),
    ("abusix-xarf-v3-samples/negative/3/invalid_exploit_wrong_cve.json", "Report.CVE"),
    ("abusix-xarf-v3-samples/negative/3/invalid_exploit_wrong_vector.json", "Report.CVSS.Vector"),
    ("abusix-xarf-v3-samples/negative/3/invalid_exploit_wrong_version.json", "Report.CVSS.Version"),
    ("abusix-xarf-v3-samples/negative/3/invalid_file_hash.json", "Report.FileHash.HashAlgorithm"),
    ("abusix-xarf-v3-samples/negative/3/invalid_file_info.json", "Report.FileSize"),
    ("abusix-xarf-v3-samples/negative/3/invalid_first_seen.json", "Report.FirstSeen"),
    ("abusix-xarf-v3-samples/negative/3/invalid_host_name.json", "Report.RpzDomain"),
    ("abusix-xarf-v3-samples/negative/3/invalid_infringed_props.json", "Report.InfringedMaterial"),
    (
        "abusix-xarf-v3-samples/negative/3/invalid_internal_processing_wrong_data_type.json",
        "InternalProcessing.SubscriberInformation.ID",
    ),
    ("abusix-xarf-v3-samples/negative/3/invalid_ip.json", "Report.SourceIp"),
    ("abusix-xarf-v3-samples/negative/3/invalid_ip2.json", "Report.SourceIp"),
    ("abusix-xarf-v3-samples/negative/3/invalid_missing_account.json", "Report.Account"),
    ("abusix-xarf-v3-samples/negative/3/invalid_missing_report.json", "Report"),
    (
        "abusix-xarf-v3-samples/negative/3/invalid_missing_report_class_report_type.json",
        "Report.ReportClass/ReportType",
    ),
    ("abusix-xarf-v3-samples/negative/3/invalid_missing_reporter.json", "ReporterInfo"),
    ("abusix-xarf-v3-samples/negative/3/invalid_missing_reporter_props.json", "ReporterInfo"),
    ("abusix-xarf-v3-samples/negative/3/invalid_missing_reporter_props2.json", "ReporterInfo"),
    ("abusix-xarf-v3-samples/negative/3/invalid_missing_reporter_props3.json", "ReporterInfo"),
    ("abusix-xarf-v3-samples/negative/3/invalid_missing_reporter_props4.json", "ReporterInfo"),
    ("abusix-xarf-v3-samples/negative/3/invalid_missing_reporter_props5.json", "ReporterInfo.ReporterOrgEmail"),
    ("abusix-xarf-v3-samples/negative/3/invalid_on_behalf_of.json", "OnBehalfOf.ComplainantOrgEmail"),
    ("abusix-xarf-v3-samples/negative/3/invalid_openservice.json", "Report.ServiceName"),
    ("abusix-xarf-v3-samples/negative/3/invalid_openservice2.json", "Report.TransportProtocol"),
    ("abusix-xarf-v3-samples/negative/3/invalid_openservice3.json", "Report.ServiceVersion"),
    ("abusix-xarf-v3-samples/negative/3/invalid_openservice4.json", "Report.ServiceName"),
    ("abusix-xarf-v3-samples/negative/3/invalid_openservice_missing_service.json", "Report.Protocol"),
    ("abusix-xarf-v3-samples/negative/3/invalid_ports.json", "Report.SourcePort"),
    ("abusix-xarf-v3-samples/negative/3/invalid_report_class_report_type.json", "Report.ReportClass/ReportType"),
    ("abusix-xarf-v3-samples/negative/3/invalid_report_class_report_type2.json", "Report.ReportClass/ReportType"),
    ("abusix-xarf-v3-samples/negative/3/invalid_report_part.json", "Report.Date"),
    ("abusix-xarf-v3-samples/negative/3/invalid_reporter_info.json", "ReporterInfo"),
    ("abusix-xarf-v3-samples/negative/3/invalid_reporter_metadata.json", "Report.ReporterCaseID"),
    ("abusix-xarf-v3-samples/negative/3/invalid_reporter_metadata2.json", "Report.ReporterCaseID"),
    ("abusix-xarf-v3-samples/negative/3/invalid_sample.json", "Report.Samples"),
    ("abusix-xarf-v3-samples/negative/3/invalid_sample_2.json", "Report.Samples[0].ContentType"),
    ("abusix-xarf-v3-samples/negative/3/invalid_type.json", "Report.ReportClass/ReportType"),
    (
        "abusix-xarf-v3-samples/negative/3/invalid_used_ip_in_potentially_compromised_account.json",
        "Report.Account.AccountIdentifier",
    ),
    ("abusix-xarf-v3-samples/negative/3/invalid_used_url_in_potentially_compromised_account.json", "Report.SourceUrl"),
    ("xarf-python-shared-samples/samples/invalid/business_rule_violations/messaging_missing_protocol.json", "protocol"),
    ("xarf-python-shared-samples/samples/invalid/malformed_data/invalid_json.json", "line 8"),
    ("xarf-python-shared-samples/samples/invalid/missing_fields/missing_reporter.json", "reporter"),
    ("xarf-python-shared-samples/samples/invalid/schema_violations/invalid_class.json", "category"),
    ("xarf-python-shared-samples/samples/invalid/schema_violations/missing_xarf_version.json", "xarf_version"),
]


@pytest.fixture(scope="module")
def parsers() -> list[Parser]:
    return load_parsers()


def _report(path: Path) -> Report:
    data = path.read_bytes()
    raw = RawInput(
        id=sha256_hex(data),
        size=len(data),
        channel="corpus",
        received_at=datetime(2026, 3, 1, 10, 0, tzinfo=UTC),
        meta={"filename": path.name},
    )
    return Report(raw, data)


def _subject(ev: Event) -> str:
    return ev.source_ip or ev.source_url or ev.source_fqdn or ev.source_account or ""


def test_tables_cover_every_file_of_our_families(corpus: Path) -> None:
    reports = corpus / "reports"
    listed = {row[0] for row in EXPECTED_EVENTS} | {row[0] for row in EXPECTED_QUARANTINE}
    listed |= {row[0] for row in INVALID_XARF}
    on_disk = {str(p.relative_to(reports)) for fam in FAMILIES for p in (reports / fam).iterdir() if p.is_file()}
    on_disk -= {f for f in on_disk if f.endswith("README.md")}
    cerberus = {f"ovh-cerberus-core-samples/{p.name}" for p in (reports / "ovh-cerberus-core-samples").iterdir()}
    on_disk |= cerberus - NOT_OURS
    xp = reports / "xarf-python-shared-samples" / "samples"
    on_disk |= {str(p.relative_to(reports)) for p in xp.rglob("*.json")}
    assert on_disk == listed


@pytest.mark.parametrize(("name", "parser", "count", "kinds", "subject"), EXPECTED_EVENTS, ids=lambda v: str(v))
def test_file_yields_expected_events(
    corpus: Path, parsers: list[Parser], name: str, parser: str, count: int, kinds: str, subject: str
) -> None:
    report = _report(corpus / "reports" / name)
    chosen = sniff(report, parsers)
    assert chosen is not None and chosen.name == parser
    events = [o for o in chosen.parse(report) if isinstance(o, Event)]
    assert len(events) == count
    assert ",".join(sorted({e.kind for e in events})) == kinds
    assert _subject(events[0]) == subject
    assert all(e.time.tzinfo is not None for e in events)
    assert len({e.id for e in events}) == len(events)


@pytest.mark.parametrize(("name", "parser", "reason"), EXPECTED_QUARANTINE, ids=lambda v: str(v))
def test_file_is_quarantined_with_a_reason(
    corpus: Path, parsers: list[Parser], name: str, parser: str, reason: str
) -> None:
    report = _report(corpus / "reports" / name)
    chosen = sniff(report, parsers)
    assert chosen is not None and chosen.name == parser
    with pytest.raises(ParseError, match=reason):
        list(chosen.parse(report))


@pytest.mark.parametrize(("name", "field"), INVALID_XARF, ids=lambda v: str(v))
def test_invalid_xarf_is_refused_naming_the_field(corpus: Path, parsers: list[Parser], name: str, field: str) -> None:
    report = _report(corpus / "reports" / name)
    chosen = sniff(report, parsers)
    assert chosen is not None and chosen.name == "xarf"
    with pytest.raises(ParseError) as info:
        list(chosen.parse(report))
    where = info.value.source or f"line {info.value.line}"
    assert where == field
    assert len(info.value.message) > len(field) + 10  # a sentence, not just the field


def test_tolerant_samples_are_marked(corpus: Path) -> None:
    from abusedesk.parsers.xarf import XarfParser

    valid = sorted((corpus / "reports" / "xarf-python-shared-samples" / "samples" / "valid" / "v4").rglob("*.json"))
    assert len(valid) == 38
    for path in valid:
        (ev,) = [o for o in XarfParser().parse(_report(path)) if isinstance(o, Event)]
        assert ev.extra.get("xarf_tolerant") is True, path.name
        assert "_internal" not in str(ev.to_dict())


@pytest.mark.parametrize("name", ["Abusehub_Example_1.eml", "Abusehub_Example_2.eml"])
def test_abusehub_event_time_agrees_with_the_notifiers_own_record(corpus: Path, name: str) -> None:
    """The AbuseHub CSV's local "2015-03-02 01:45:59" (+01:00 says the mail text) is the 00:45:59 UTC of the
    Shadowserver record attached beside it: the time zone is read, not assumed."""
    (event,) = [o for o in sniff_parse(corpus / "reports" / "abuseio-notifier-samples" / "abusehub" / name)]
    assert event.time == datetime(2015, 3, 2, 0, 45, 59, tzinfo=UTC)
    assert event.extra["notifier_record"]["timestamp"] == "2015-03-02 00:45:59"
    assert (event.extra["time_zone"], event.extra["utc_offset"]) == ("report text", "+01:00")
    assert (event.source_port, event.transport, event.source_fqdn) == (2005, "udp", "nobody.example.com")
    assert event.extra["reliable_notifier"] == "The Shadowserver Foundation"
    assert event.extra["infection_type"] == "ZeroAccess"
    assert event.reporter == "reports@reports.abusehub.nl"


def sniff_parse(path: Path) -> list[Event]:
    report = _report(path)
    chosen = sniff(report, load_parsers())
    assert chosen is not None
    return [o for o in chosen.parse(report) if isinstance(o, Event)]
