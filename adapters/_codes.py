"""Country codes and the Spanish names agencies write for them.

ISO 3166-1 alpha-3 is a standard, not Puente's policy, so it lives here rather than in
configuration. ICAO Doc 9303 adds a few codes that travel documents use (Kosovo, stateless
persons, refugees); screening systems copy them from the document, so they are accepted.
"""

from __future__ import annotations

import re
from functools import lru_cache

from puente.strict import unaccented

# 254 codes read better as text than as a literal list, hence the noqa below.
ISO_ALPHA3 = frozenset("""
AFG ALA ALB DZA ASM AND AGO AIA ATA ATG ARG ARM ABW AUS AUT AZE BHS BHR BGD BRB BLR BEL BLZ BEN BMU BTN
BOL BES BIH BWA BVT BRA IOT BRN BGR BFA BDI CPV KHM CMR CAN CYM CAF TCD CHL CHN CXR CCK COL COM COG COD
COK CRI CIV HRV CUB CUW CYP CZE DNK DJI DMA DOM ECU EGY SLV GNQ ERI EST SWZ ETH FLK FRO FJI FIN FRA GUF
PYF ATF GAB GMB GEO DEU GHA GIB GRC GRL GRD GLP GUM GTM GGY GIN GNB GUY HTI HMD VAT HND HKG HUN ISL IND
IDN IRN IRQ IRL IMN ISR ITA JAM JPN JEY JOR KAZ KEN KIR PRK KOR KWT KGZ LAO LVA LBN LSO LBR LBY LIE LTU
LUX MAC MDG MWI MYS MDV MLI MLT MHL MTQ MRT MUS MYT MEX FSM MDA MCO MNG MNE MSR MAR MOZ MMR NAM NRU NPL
NLD NCL NZL NIC NER NGA NIU NFK MKD MNP NOR OMN PAK PLW PSE PAN PNG PRY PER PHL PCN POL PRT PRI QAT REU
ROU RUS RWA BLM SHN KNA LCA MAF SPM VCT WSM SMR STP SAU SEN SRB SYC SLE SGP SXM SVK SVN SLB SOM ZAF SGS
SSD ESP LKA SDN SUR SJM SWE CHE SYR TWN TJK TZA THA TLS TGO TKL TON TTO TUN TUR TKM TCA TUV UGA UKR ARE
GBR USA UMI URY UZB VUT VEN VNM VGB VIR WLF ESH YEM ZMB ZWE
RKS XXA XXB XXC XXX
""".split())  # noqa: SIM905

# Country (and nationality) names as Spanish-speaking staff type them, accents and case aside.
# Only the nationalities seen at Panama's borders; anything else must be written as a code.
_SPANISH = {
    "AFG": "afganistan afgano", "AGO": "angola angoleno", "ARG": "argentina argentino",
    "BGD": "banglades bangladesh bangladesi", "BOL": "bolivia boliviano", "BRA": "brasil brasileno",
    "CHL": "chile chileno", "CHN": "china chino", "CMR": "camerun camerunes", "COL": "colombia colombiano",
    "CRI": "costa_rica costarricense", "CUB": "cuba cubano", "DOM": "republica_dominicana dominicano",
    "ECU": "ecuador ecuatoriano", "ERI": "eritrea eritreo", "ESP": "espana espanol",
    "GHA": "ghana ghanes", "GIN": "guinea guineano", "GTM": "guatemala guatemalteco",
    "HND": "honduras hondureno", "HTI": "haiti haitiano", "IND": "india indio hindu",
    "IRN": "iran irani", "MEX": "mexico mexicano", "NIC": "nicaragua nicaraguense", "NPL": "nepal nepali",
    "PAK": "pakistan pakistani", "PAN": "panama panameno", "PER": "peru peruano",
    "SEN": "senegal senegales", "SLV": "el_salvador salvadoreno", "SOM": "somalia somali",
    "LKA": "sri_lanka ceilanes esrilanques", "SYR": "siria sirio", "TUR": "turquia turco",
    "USA": "estados_unidos eeuu estadounidense norteamericano", "UZB": "uzbekistan uzbeko",
    "VEN": "venezuela venezolano", "VNM": "vietnam vietnamita", "RUS": "rusia ruso",
}


def _feminine(word: str) -> str:
    if word.endswith("o"):
        return word[:-1] + "a"
    if word.endswith(("l", "s", "n")) and not word.endswith("ia"):
        return word + "a"
    return word


def _plurals(word: str) -> tuple[str, ...]:
    # "-ies" too: nepalí -> nepalíes, bangladesí -> bangladesíes (the accent is dropped before lookup)
    return (word + "s", word + "es") if word[-1] in "iu" else (word + ("s" if word[-1] in "aeo" else "es"),)


COUNTRY_NAMES: dict[str, str] = {}
for _code, _names in _SPANISH.items():
    for _name in _names.split():
        for _form in {_name, _feminine(_name)}:
            COUNTRY_NAMES[_form.upper()] = _code
            for _many in _plurals(_form):  # "venezolanos", "cameruneses", "nepalíes"
                COUNTRY_NAMES[_many.upper()] = _code

_NON_WORD = re.compile(r"[^A-Z0-9]+")


def norm_text(text: str) -> str:
    """``norm_key``, uncached: for a value that need not repeat (an ignored cell of up to a record's size), which a
    cache would keep for the life of the process."""
    return _NON_WORD.sub("_", unaccented(text).upper()).strip("_")


@lru_cache(maxsize=8192)  # labels repeat (provinces, codes, countries): the same few hundred strings
def norm_key(text: str) -> str:
    """The lookup form of a code or label: accents dropped, upper case, words joined by '_'.

    'Darién' -> DARIEN, 'Bocas del Toro' -> BOCAS_DEL_TORO, 'lancha rápida' -> LANCHA_RAPIDA,
    'Ngäbe-Buglé' -> NGABE_BUGLE. Staff type the same label many ways; one form compares them. Cached, so for
    labels only: a free value goes through ``norm_text``.
    """
    return norm_text(text)


def country(text: str) -> str | None:
    """The alpha-3 code for a code or a Spanish country or nationality name, or None."""
    key = norm_key(text)
    if key in ISO_ALPHA3:
        return key
    return COUNTRY_NAMES.get(key)
