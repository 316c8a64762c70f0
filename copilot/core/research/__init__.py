"""Sessions as research data: FSR and statistics, studies, exports."""
