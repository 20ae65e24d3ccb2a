-- The clinic page reads a clinic's slots in time order.
CREATE INDEX clinic_slots_by_clinic ON clinic_slots (clinic_id, starts_at);
