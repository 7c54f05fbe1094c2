"""FHIR R4 in and out: import a Bundle (file, API, a pull from the hospital's FHIR server), export a signed
recommendation and a course summary. Resources are parsed with fhir.resources' R4B package (docs/fhir.md).
"""
