"""Patients, covariate measurements over time, genotypes and phenotypes, consent records (to come)."""
