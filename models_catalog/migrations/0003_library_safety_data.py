"""Existing installations get the library's new safety data: toxicity markers and one-sided ranges on the
target protocols the hospital left as shipped, and the new infusion defaults of the drugs.

A protocol is changed only when its target is still exactly the one the library shipped before; a protocol the
hospital edited is left alone (its curators add the markers themselves). The drugs' new fields are set only
where they are still empty. The new model versions (1.1.0, with their validity domains) are published by
``load_model_library``, like any new version.
"""

from django.db import migrations

UPGRADES = [
    {
        "drug": "vancomycin",
        "indication": "serious MRSA infection, adults, intermittent infusion (AUC-guided dosing)",
        "old": {"metric": "auc24", "low": 400, "high": 600, "unit": "mg·h/L"},
        "new": {
            "metric": "auc24",
            "low": 400,
            "high": 600,
            "unit": "mg·h/L",
            "safety": [
                {
                    "metric": "auc24",
                    "above": 600,
                    "source": "Rybak 2020 ASHP/IDSA/PIDS/SIDP consensus, doi:10.1093/ajhp/zxaa036: AUC24 "
                    "above 600 mg·h/L is associated with acute kidney injury",
                },
                {
                    "metric": "trough",
                    "above": 20,
                    "unit": "mg/L",
                    "source": "Rybak 2020 ASHP/IDSA/PIDS/SIDP consensus, doi:10.1093/ajhp/zxaa036: "
                    "troughs above 15-20 mg/L are associated with nephrotoxicity",
                },
            ],
            "max_p_toxic": 0.25,
        },
        "source": "Rybak 2020 ASHP/IDSA/PIDS/SIDP consensus, doi:10.1093/ajhp/zxaa036 (AUC24/MIC 400-600 "
        "assuming MIC 1 mg/L) Toxicity markers: see each marker's source; P(toxic) at most 25 % for a "
        "recommended regimen (hospital default, review locally).",
    },
    {
        "drug": "vancomycin",
        "indication": "serious MRSA infection, adults, continuous infusion",
        "old": {"metric": "css", "low": 20, "high": 25, "unit": "mg/L"},
        "new": {
            "metric": "css",
            "low": 20,
            "high": 25,
            "unit": "mg/L",
            "continuous_infusion": True,
            "interval_options_h": [],
            "max_daily_dose_mg": 6000,
            "safety": [
                {
                    "metric": "css",
                    "above": 25,
                    "unit": "mg/L",
                    "source": "Rybak 2020 ASHP/IDSA/PIDS/SIDP consensus, doi:10.1093/ajhp/zxaa036: a "
                    "steady-state concentration above 25 mg/L (AUC24 above 600 mg·h/L) is "
                    "associated with acute kidney injury",
                }
            ],
            "max_p_toxic": 0.25,
        },
        "source": "Rybak 2020 ASHP/IDSA/PIDS/SIDP consensus, doi:10.1093/ajhp/zxaa036 (continuous infusion: "
        "steady-state concentration 20-25 mg/L, i.e. AUC24 480-600) Toxicity markers: see each "
        "marker's source; P(toxic) at most 25 % for a recommended regimen (hospital default, review "
        "locally). Continuous infusion only (no intermittent regimen is proposed under this protocol); "
        "at most 6000 mg/24 h: Rybak 2020 gives 30-40 mg/kg/day, up to 60 mg/kg/day, after a loading "
        "dose (hospital default for a 100-kg patient, review locally).",
    },
    {
        "drug": "vancomycin",
        "fields": {"usual_infusion_duration_h": 2.0, "standard_concentration_mg_per_ml": 5.0},
    },
    {
        "drug": "amikacin",
        "indication": "severe Gram-negative infection, once-daily dosing (peak/MIC)",
        "old": {"metric": "cmax_mic", "low": 8, "high": 10, "mic_mg_per_l": 8},
        "new": {
            "metric": "cmax_mic",
            "low": 8,
            "high": None,
            "mic_mg_per_l": 8,
            "safety": [
                {
                    "metric": "trough",
                    "above": 2.5,
                    "unit": "mg/L",
                    "source": "Afssaps (ANSM) 2011, Mise au point sur le bon usage des aminosides "
                    "administres par voie injectable: amikacin trough (Cmin) below 2.5 mg/L to "
                    "limit nephro- and ototoxicity",
                }
            ],
            "max_p_toxic": 0.25,
        },
        "source": "Cmax/MIC 8-10 (Moore RD et al. J Infect Dis 1987;155:93-99, doi:10.1093/infdis/155.1.93); "
        "with the amikacin clinical breakpoint MIC 8 mg/L, Cmax 64-80 mg/L, as applied by Logre 2020, "
        "doi:10.1186/s13613-020-00685-5 Toxicity markers: see each marker's source; P(toxic) at most "
        "25 % for a recommended regimen (hospital default, review locally).",
    },
    {"drug": "amikacin", "fields": {"usual_infusion_duration_h": 0.5}},
    {
        "drug": "tacrolimus",
        "indication": "paediatric kidney transplantation, weeks 1-3 (whole-blood trough)",
        "old": {"metric": "trough", "low": 10, "high": 15, "unit": "ng/mL"},
        "new": {
            "metric": "trough",
            "low": 10,
            "high": 15,
            "unit": "ng/mL",
            "safety": [
                {
                    "metric": "trough",
                    "above": 15,
                    "unit": "ng/mL",
                    "source": "Andrews 2017 (doi:10.1007/s40262-017-0567-8) study protocol: a trough "
                    "above the window's ceiling risks nephro- and neurotoxicity; confirm "
                    "locally",
                }
            ],
            "max_p_toxic": 0.25,
        },
        "source": "Andrews 2017 (doi:10.1007/s40262-017-0567-8): institutional TWIST-protocol target pre-dose "
        "concentration of the model population, 10-15 ng/mL in the first 3 weeks; a study protocol, "
        "not a guideline - confirm locally Toxicity markers: see each marker's source; P(toxic) at "
        "most 25 % for a recommended regimen (hospital default, review locally).",
    },
    {
        "drug": "tacrolimus",
        "indication": "paediatric kidney transplantation, after week 3 (whole-blood trough)",
        "old": {"metric": "trough", "low": 7, "high": 12, "unit": "ng/mL"},
        "new": {
            "metric": "trough",
            "low": 7,
            "high": 12,
            "unit": "ng/mL",
            "safety": [
                {
                    "metric": "trough",
                    "above": 12,
                    "unit": "ng/mL",
                    "source": "Andrews 2017 (doi:10.1007/s40262-017-0567-8) study protocol: a trough "
                    "above the window's ceiling risks nephro- and neurotoxicity; confirm "
                    "locally",
                }
            ],
            "max_p_toxic": 0.25,
        },
        "source": "Andrews 2017 (doi:10.1007/s40262-017-0567-8): institutional target 7-12 ng/mL after the first "
        "3 weeks; a study protocol, not a guideline - confirm locally Toxicity markers: see each "
        "marker's source; P(toxic) at most 25 % for a recommended regimen (hospital default, review "
        "locally).",
    },
    {
        "drug": "meropenem",
        "indication": "critically ill adults, beta-lactam TDM (100 % fT>MIC), Pseudomonas aeruginosa breakpoint "
        "MIC 2 mg/L",
        "old": {
            "metric": "ft_above_mic",
            "low": 1.0,
            "high": 1.0,
            "mic_mg_per_l": 2,
            "unbound_fraction": 0.98,
        },
        "new": {
            "metric": "ft_above_mic",
            "low": 1.0,
            "high": 1.0,
            "mic_mg_per_l": 2,
            "unbound_fraction": 0.98,
            "safety": [
                {
                    "metric": "trough",
                    "above": 44.5,
                    "unit": "mg/L",
                    "source": "Imani S et al. J Antimicrob Chemother 2017;72(10):2891-2897, "
                    "doi:10.1093/jac/dkx209: meropenem trough above 44.45 mg/L gave a 50 % "
                    "risk of neurotoxicity",
                }
            ],
            "max_p_toxic": 0.25,
        },
        "source": "Abdul-Aziz 2020 ESICM/ESCMID/IATDMCT/ISAC position paper, doi:10.1007/s00134-020-06050-1 (100 "
        "% fT>MIC for beta-lactams); meropenem plasma protein binding about 2 % (SmPC); EUCAST "
        "susceptible breakpoint 2 mg/L for Pseudomonas - adapt the MIC to the isolate Toxicity "
        "markers: see each marker's source; P(toxic) at most 25 % for a recommended regimen (hospital "
        "default, review locally).",
    },
    {"drug": "meropenem", "fields": {"usual_infusion_duration_h": 0.5}},
    {
        "drug": "tobramycin",
        "indication": "Pseudomonas aeruginosa infection, once-daily dosing (peak/MIC)",
        "old": {"metric": "cmax_mic", "low": 8, "high": 10, "mic_mg_per_l": 2},
        "new": {
            "metric": "cmax_mic",
            "low": 8,
            "high": None,
            "mic_mg_per_l": 2,
            "safety": [
                {
                    "metric": "trough",
                    "above": 1,
                    "unit": "mg/L",
                    "source": "UK Cystic Fibrosis Trust Antibiotic Working Group, Antibiotic treatment "
                    "for cystic fibrosis, 3rd ed. (2009): once-daily tobramycin trough below 1 "
                    "mg/L (nephro- and ototoxicity)",
                }
            ],
            "max_p_toxic": 0.25,
        },
        "source": "Cmax/MIC 8-10 (Moore RD et al. J Infect Dis 1987;155:93-99, doi:10.1093/infdis/155.1.93); MIC "
        "2 mg/L = EUCAST tobramycin breakpoint for Pseudomonas aeruginosa (bracketed, for combination "
        "therapy) - i.e. Cmax 16-20 mg/L; use the isolate's MIC when known. CF centres often aim "
        "higher (peak 20-30 mg/L). Toxicity markers: see each marker's source; P(toxic) at most 25 % "
        "for a recommended regimen (hospital default, review locally).",
    },
    {"drug": "tobramycin", "fields": {"usual_infusion_duration_h": 0.5}},
    {
        "drug": "busulfan",
        "indication": "myeloablative conditioning before HSCT, 4-day IV course (cumulative AUC over the course)",
        "old": {"metric": "auc_cumulative", "low": 78, "high": 101, "unit": "mg·h/L", "until_h": 120},
        "new": {
            "metric": "auc_cumulative",
            "low": 78,
            "high": 101,
            "unit": "mg·h/L",
            "until_h": 120,
            "safety": [
                {
                    "metric": "auc_cumulative",
                    "above": 101,
                    "unit": "mg·h/L",
                    "until_h": 120,
                    "source": "Bartelink IH et al. Lancet Haematol 2016;3(11):e526-e536, "
                    "doi:10.1016/S2352-3026(16)30114-4: a cumulative AUC above the optimal "
                    "78-101 mg·h/L is associated with more toxicity (graft failure below it)",
                }
            ],
            "max_p_toxic": 0.25,
        },
        "source": "Bartelink IH et al. Lancet Haematol 2016;3(11):e526-e536, doi:10.1016/S2352-3026(16)30114-4: "
        "optimal cumulative AUC 78-101 mg·h/L (= 19 000-24 600 umol·min/L; often rounded to 80-100 "
        "mg·h/L) in children and young adults; the range was not re-read in this session (the earlier "
        "Bartelink 2013 BBMT analysis found an optimum of 78 mg·h/L, 95 % CI 74-82). Adult protocols "
        "differ (e.g. Choe 2012 targeted 26.18 mg·h/L per daily dose, 105 mg·h/L per course): confirm "
        "locally. until_h 120: the 4-day course plus 24 h, so that the tail of the last dose (t1/2 "
        "about 3 h) is included. Toxicity markers: see each marker's source; P(toxic) at most 25 % for "
        "a recommended regimen (hospital default, review locally).",
    },
    {"drug": "busulfan", "fields": {"usual_infusion_duration_h": 3.0}},
    {
        "drug": "carboplatin",
        "indication": "AUC-targeted carboplatin course (Calvert target AUC 4-6 mg·min/mL, free carboplatin)",
        "old": {"metric": "auc_window", "low": 66.667, "high": 100, "unit": "mg·h/L", "window_h": [0, 168]},
        "new": {
            "metric": "auc_window",
            "low": 66.667,
            "high": 100,
            "unit": "mg·h/L",
            "window_h": [0, 168],
            "safety": [
                {
                    "metric": "auc_window",
                    "above": 100,
                    "unit": "mg·h/L",
                    "window_h": [0, 168],
                    "source": "Calvert AH et al. J Clin Oncol 1989;7(11):1748-1756, "
                    "doi:10.1200/JCO.1989.7.11.1748: thrombocytopenia rises with the AUC; "
                    "above the prescribed AUC 6 mg·min/mL (100 mg·h/L) myelotoxicity is "
                    "feared",
                }
            ],
            "max_p_toxic": 0.25,
        },
        "source": "Calvert AH et al. J Clin Oncol 1989;7(11):1748-1756, doi:10.1200/JCO.1989.7.11.1748 and the "
        "carboplatin labelling (target AUC 4-6 mg/mL·min for single-agent carboplatin in previously "
        "treated patients; 5-7 when untreated). Unit conversion: 1 mg·min/mL = 1000 mg·min/L = 1000/60 "
        "mg·h/L = 16.667 mg·h/L, so 4-6 mg·min/mL = 66.667-100 mg·h/L. Window 0-168 h from the start "
        "of the course (the whole exposure of a single infusion: t1/2 about 4 h). Set the AUC of the "
        "protocol actually prescribed (combination regimens often AUC 5-6). Toxicity markers: see each "
        "marker's source; P(toxic) at most 25 % for a recommended regimen (hospital default, review "
        "locally).",
    },
    {"drug": "carboplatin", "fields": {"usual_infusion_duration_h": 1.0}},
]


def upgrade_library_data(apps, schema_editor):
    Drug = apps.get_model("models_catalog", "Drug")
    TargetProtocol = apps.get_model("models_catalog", "TargetProtocol")
    CatalogEvent = apps.get_model("models_catalog", "CatalogEvent")
    for item in UPGRADES:
        drug = Drug.objects.filter(name=item["drug"]).first()
        if drug is None:
            continue
        if "fields" in item:
            empty = {name: value for name, value in item["fields"].items() if getattr(drug, name) is None}
            if empty:
                Drug.objects.filter(pk=drug.pk).update(**empty)
            continue
        protocol = TargetProtocol.objects.filter(drug=drug, indication=item["indication"]).first()
        if protocol is None or protocol.target != item["old"]:
            continue
        TargetProtocol.objects.filter(pk=protocol.pk).update(target=item["new"], source=item["source"])
        CatalogEvent.objects.create(
            action="target_protocol_upgraded",
            target_protocol_id=protocol.pk,
            details={"before": item["old"], "after": item["new"], "by": "migration 0003"},
        )


class Migration(migrations.Migration):
    dependencies = [("models_catalog", "0002_drug_infusion_defaults")]

    operations = [migrations.RunPython(upgrade_library_data, migrations.RunPython.noop)]
