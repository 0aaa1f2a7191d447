"""The people, groups, apps, places and browsers of a simulated org, built from a seed."""

from __future__ import annotations

import hashlib
import random
import string
from dataclasses import dataclass

ALNUM = string.ascii_letters + string.digits
LOGIN_DOMAIN = "example.com"


def okta_id(rng: random.Random, prefix: str) -> str:
    """An Okta-style object id: a three-character prefix and 17 alphanumerics."""
    return prefix + "".join(rng.choice(ALNUM) for _ in range(17))


def derived_id(prefix: str, *parts: object) -> str:
    """A stable Okta-style id derived from ``parts`` (same parts, same id)."""
    digest = hashlib.sha256("\x1f".join(map(str, parts)).encode()).digest()
    return prefix + "".join(ALNUM[b % len(ALNUM)] for b in digest[:17])


def token(rng: random.Random, length: int, alphabet: str = ALNUM) -> str:
    """A random string such as a request id or session id."""
    return "".join(rng.choice(alphabet) for _ in range(length))


@dataclass(frozen=True)
class Network:
    """Where an address lives: geography plus the autonomous system that announces it."""

    city: str
    state: str
    country: str
    postal_code: str
    lat: float
    lon: float
    as_number: int
    as_org: str
    isp: str
    domain: str
    prefix: str
    is_proxy: bool = False

    def address(self, rng: random.Random) -> str:
        """A random IPv4 address inside this network's /16."""
        return f"{self.prefix}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"


# fmt: off
HOME_NETWORKS: tuple[Network, ...] = (
    Network("Toronto", "Ontario", "Canada", "M4M", 43.6567, -79.34, 812,
            "ROGERS-COMMUNICATIONS", "Rogers Communications Canada Inc.", "rogers.com", "99.226"),
    Network("San Francisco", "California", "United States", "94107", 37.7697, -122.3933, 7922,
            "COMCAST-7922", "Comcast Cable Communications, LLC", "comcast.net", "73.158"),
    Network("New York", "New York", "United States", "10001", 40.7484, -73.9967, 701,
            "UUNET", "Verizon Business", "verizon.net", "108.41"),
    Network("Austin", "Texas", "United States", "78701", 30.2711, -97.7437, 7018,
            "ATT-INTERNET4", "AT&T Services, Inc.", "att.net", "99.61"),
    Network("Chicago", "Illinois", "United States", "60606", 41.8823, -87.6378, 20115,
            "CHARTER-20115", "Charter Communications", "charter.com", "24.14"),
    Network("London", "England", "United Kingdom", "EC2A", 51.5246, -0.0794, 2856,
            "British Telecommunications PLC", "BT", "bt.com", "86.140"),
    Network("Berlin", "Land Berlin", "Germany", "10115", 52.5323, 13.3846, 3320,
            "Deutsche Telekom AG", "Deutsche Telekom AG", "telekom.de", "91.64"),
    Network("Sydney", "New South Wales", "Australia", "2000", -33.8688, 151.2093, 1221,
            "Telstra Limited", "Telstra Internet", "bigpond.com", "101.181"),
    Network("Bengaluru", "Karnataka", "India", "560001", 12.9716, 77.5946, 55836,
            "Reliance Jio Infocomm Limited", "Reliance Jio", "jio.com", "49.36"),
)

OFFICE = Network("San Francisco", "California", "United States", "94105", 37.7898, -122.3942,
                 6461, "ZAYO-6461", "Zayo Bandwidth", "zayo.com", "64.125")

HOSTILE_NETWORKS: tuple[Network, ...] = (
    Network("Amsterdam", "North Holland", "Netherlands", "1098", 52.3759, 4.8975, 14061,
            "DIGITALOCEAN-ASN", "DigitalOcean, LLC", "digitalocean.com", "167.99"),
    Network("Gravelines", "Hauts-de-France", "France", "59820", 50.9865, 2.1281, 16276,
            "OVH SAS", "OVH SAS", "ovh.net", "51.68", is_proxy=True),
    Network("Ashburn", "Virginia", "United States", "20149", 39.0437, -77.4875, 16509,
            "AMAZON-02", "Amazon.com, Inc.", "amazonaws.com", "3.236"),
    Network("Bucharest", "Bucuresti", "Romania", "030167", 44.4268, 26.1025, 9009,
            "M247 Europe SRL", "M247 Europe SRL", "m247.com", "185.220", is_proxy=True),
)


@dataclass(frozen=True)
class Agent:
    """A user agent as Okta reports it: the raw string plus its parsed OS and browser."""

    raw: str
    os: str
    browser: str
    device: str


_WEBKIT = "AppleWebKit/537.36 (KHTML, like Gecko)"
AGENTS: tuple[Agent, ...] = (
    Agent(f"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) {_WEBKIT} Chrome/126.0.0.0 "
          "Safari/537.36", "Mac OS X", "CHROME", "Computer"),
    Agent("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like "
          "Gecko) Version/17.5 Safari/605.1.15", "Mac OS X", "SAFARI", "Computer"),
    Agent(f"Mozilla/5.0 (Windows NT 10.0; Win64; x64) {_WEBKIT} Chrome/126.0.0.0 "
          "Safari/537.36 Edg/126.0.0.0", "Windows 10", "EDGE_CHROMIUM", "Computer"),
    Agent(f"Mozilla/5.0 (Windows NT 10.0; Win64; x64) {_WEBKIT} Chrome/125.0.0.0 "
          "Safari/537.36", "Windows 10", "CHROME", "Computer"),
    Agent("Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:127.0) Gecko/20100101 Firefox/127.0",
          "Windows 10", "FIREFOX", "Computer"),
    Agent("Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, "
          "like Gecko) Version/17.5 Mobile/15E148 Safari/604.1", "iOS", "SAFARI", "Mobile"),
    Agent(f"Mozilla/5.0 (Linux; Android 14; Pixel 8) {_WEBKIT} Chrome/126.0.0.0 Mobile "
          "Safari/537.36", "Android", "CHROME", "Mobile"),
)
# fmt: on

TOOL_AGENTS: tuple[Agent, ...] = (
    Agent("python-requests/2.31.0", "Unknown", "UNKNOWN", "Unknown"),
    Agent("curl/8.4.0", "Unknown", "UNKNOWN", "Unknown"),
    Agent("Go-http-client/1.1", "Unknown", "UNKNOWN", "Unknown"),
)

# fmt: off
_FIRST = (
    "Alice", "Bruno", "Chloe", "Daniel", "Elena", "Farid", "Grace", "Hiro", "Isabel", "Jamal",
    "Kavya", "Liam", "Maya", "Noah", "Olivia", "Priya", "Quentin", "Rosa", "Samuel", "Tara",
    "Umar", "Vera", "Wei", "Ximena", "Yusuf", "Zoe", "Aaron", "Beatriz", "Caleb", "Dana",
)
_LAST = (
    "Abbott", "Baker", "Castillo", "Dubois", "Eriksen", "Fischer", "Garcia", "Haddad", "Ito",
    "Jensen", "Kowalski", "Lopez", "Moreau", "Nakamura", "Okafor", "Patel", "Quinn", "Rossi",
    "Schmidt", "Tanaka", "Ueda", "Varga", "Walsh", "Xu", "Young", "Zhang",
)
_GROUPS = (
    "Everyone", "Engineering", "Finance", "Sales", "Marketing", "Support", "IT-Admins",
    "Contractors", "Security-Team", "Executives",
)
# fmt: on


@dataclass(frozen=True)
class Enrollment:
    """An authenticator a user enrolled: what the log shows as an AuthenticatorEnrollment."""

    id: str
    name: str
    credential_type: str
    credential_provider: str


@dataclass(frozen=True)
class User:
    """A person in the org."""

    id: str
    login: str
    display_name: str
    home: Network
    ip: str
    agent: Agent
    admin: bool
    password: Enrollment
    factors: tuple[Enrollment, ...]
    device_id: str | None


@dataclass(frozen=True)
class Group:
    """An Okta group."""

    id: str
    name: str


@dataclass(frozen=True)
class App:
    """An app instance; ``builtin`` apps (Dashboard, Admin Console) are not assigned."""

    id: str
    name: str
    label: str
    sign_on_mode: str
    builtin: bool = False

    @property
    def sign_on_label(self) -> str:
        return {"SAML_2_0": "SAML 2.0", "OPENID_CONNECT": "OpenID Connect"}.get(
            self.sign_on_mode, "Secure Web Authentication"
        )


_APPS = (
    ("salesforce", "Salesforce.com", "SAML_2_0"),
    ("slack", "Slack", "SAML_2_0"),
    ("google", "Google Workspace", "SAML_2_0"),
    ("github_enterprise", "GitHub Enterprise Cloud", "SAML_2_0"),
    ("zoom", "Zoom", "SAML_2_0"),
    ("amazon_aws_sso", "AWS IAM Identity Center", "SAML_2_0"),
    ("atlassian", "Atlassian Cloud", "OPENID_CONNECT"),
    ("workday", "Workday", "AUTO_LOGIN"),
)
_FACTORS = (
    ("pfd", "Okta Verify", "OTP", "OKTA_CREDENTIAL_PROVIDER"),
    ("mfa", "Google Authenticator", "OTP", "GOOGLE"),
    ("eml", "Email", "EMAIL", "OKTA_CREDENTIAL_PROVIDER"),
    ("sms", "Phone", "SMS", "OKTA_CREDENTIAL_PROVIDER"),
    ("fwf", "Security Key or Biometric", "ASSERTION", "OKTA_CREDENTIAL_PROVIDER"),
)


@dataclass(frozen=True)
class Population:
    """Everything a generated event can point at."""

    users: tuple[User, ...]
    groups: tuple[Group, ...]
    apps: tuple[App, ...]
    dashboard: App
    admin_console: App

    @property
    def admins(self) -> tuple[User, ...]:
        return tuple(u for u in self.users if u.admin)


def build_population(seed: int, users: int = 50, admins: int = 4) -> Population:
    """Build a deterministic population for ``seed``."""
    rng = random.Random(f"population:{seed}")
    names = [(f, la) for f in _FIRST for la in _LAST]
    rng.shuffle(names)
    people = []
    for i, (first, last) in enumerate(names[:users]):
        uid = okta_id(rng, "00u")
        home = rng.choice(HOME_NETWORKS)
        kinds = rng.sample(_FACTORS, rng.randint(1, 3))
        people.append(
            User(
                id=uid,
                login=f"{first.lower()}.{last.lower()}@{LOGIN_DOMAIN}",
                display_name=f"{first} {last}",
                home=home,
                ip=home.address(rng),
                agent=rng.choice(AGENTS),
                admin=i < admins,
                password=Enrollment(
                    okta_id(rng, "lae"), "Password", "PASSWORD", "OKTA_CREDENTIAL_PROVIDER"
                ),
                factors=tuple(Enrollment(okta_id(rng, p), n, t, c) for p, n, t, c in kinds),
                device_id=okta_id(rng, "guo") if rng.random() < 0.4 else None,
            )
        )
    groups = tuple(Group(okta_id(rng, "00g"), name) for name in _GROUPS)
    apps = tuple(
        App(okta_id(rng, "0oa"), f"{slug}_{i + 1}", label, mode)
        for i, (slug, label, mode) in enumerate(_APPS)
    )
    dashboard = App(okta_id(rng, "0oa"), "Okta Dashboard", "Okta Dashboard", "BOOKMARK", True)
    console = App(okta_id(rng, "0oa"), "Okta Admin Console", "Okta Admin Console", "BOOKMARK", True)
    return Population(tuple(people), groups, apps, dashboard, console)
