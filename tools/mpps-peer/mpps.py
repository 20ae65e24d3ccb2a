"""A modality's MPPS, played by pynetdicom (the independent peer of the worklist's MPPS tests).

    python mpps.py HOST PORT CALLED_AE STEPS_JSON

STEPS_JSON is a list of operations done in one association, in order:
    {"op": "create", "uid": "...", "accession": "...", "study": "...", "status": "IN PROGRESS",
     "station": "MAMMO1", "date": "YYYYMMDD", "time": "HHMMSS"}
    {"op": "set", "uid": "...", "status": "COMPLETED", "date": "...", "time": "...",
     "reason": "Patient refused"}
Keys may be left out to test the SCP's refusals. Prints one JSON line per operation with the
DIMSE status the SCP answered (or null when it sent none), and exits 1 if the association failed.
"""

import json
import sys

from pydicom.dataset import Dataset
from pynetdicom import AE
from pynetdicom.sop_class import ModalityPerformedProcedureStep


def dataset_for(step):
    ds = Dataset()
    if "status" in step:
        ds.PerformedProcedureStepStatus = step["status"]
    if step["op"] == "create":
        scheduled = Dataset()
        if "accession" in step:
            scheduled.AccessionNumber = step["accession"]
        if "study" in step:
            scheduled.StudyInstanceUID = step["study"]
        ds.ScheduledStepAttributesSequence = [scheduled]
        ds.PerformedStationAETitle = step.get("station", "")
        ds.Modality = "MG"
        if "date" in step:
            ds.PerformedProcedureStepStartDate = step["date"]
            ds.PerformedProcedureStepStartTime = step.get("time", "")
    else:
        if "date" in step:
            ds.PerformedProcedureStepEndDate = step["date"]
            ds.PerformedProcedureStepEndTime = step.get("time", "")
        if "reason" in step:
            reason = Dataset()
            reason.CodeValue = "110514"
            reason.CodingSchemeDesignator = "DCM"
            reason.CodeMeaning = step["reason"]
            ds.PerformedProcedureStepDiscontinuationReasonCodeSequence = [reason]
    return ds


def main():
    host, port, called, steps = sys.argv[1], int(sys.argv[2]), sys.argv[3], json.loads(sys.argv[4])
    ae = AE(ae_title="MAMMO1")
    ae.add_requested_context(ModalityPerformedProcedureStep)
    assoc = ae.associate(host, port, ae_title=called)
    if not assoc.is_established:
        print(json.dumps({"error": "association not established"}))
        sys.exit(1)
    for step in steps:
        ds = dataset_for(step)
        if step["op"] == "create":
            status, _ = assoc.send_n_create(ds, ModalityPerformedProcedureStep, step["uid"])
        else:
            status, _ = assoc.send_n_set(ds, ModalityPerformedProcedureStep, step["uid"])
        code = status.Status if status is not None and "Status" in status else None
        comment = str(status.ErrorComment) if status is not None and "ErrorComment" in status else None
        print(json.dumps({"op": step["op"], "uid": step["uid"], "status": code, "comment": comment}), flush=True)
    assoc.release()


if __name__ == "__main__":
    main()
